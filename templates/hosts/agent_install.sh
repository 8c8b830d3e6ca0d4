{% autoescape off %}# Install the Switchboard agent on {{ host }}: paste as root into a shell on that host.
# Needs python3 3.11+ (Debian 12 has it) and systemd. The token goes into a file of mode 0600,
# never onto a command line.
install -d -m 755 /usr/local/lib/switchboard
install -d -m 700 /etc/switchboard
install -m 600 /dev/stdin /etc/switchboard/agent.token <<'EOF'
{{ token }}
EOF
echo 'SWITCHBOARD_AGENT_URL={{ ws_url }}' > /etc/switchboard/agent.env
python3 -I - <<'EOF'
import os, urllib.request
token = open("/etc/switchboard/agent.token").read().strip()
for url, path in [
    ("{{ download_url }}", "/usr/local/lib/switchboard/switchboard-agent.pyz"),
    ("{{ unit_url }}", "/etc/systemd/system/switchboard-agent.service"),
]:
    request = urllib.request.Request(url, headers={"Authorization": "Token " + token})
    with urllib.request.urlopen(request) as response, open(path + ".part", "wb") as out:
        out.write(response.read())
    os.replace(path + ".part", path)  # a failed download leaves the previous file whole
EOF
echo '{{ archive.sha256 }}  /usr/local/lib/switchboard/switchboard-agent.pyz' | sha256sum -c &&
systemctl daemon-reload && systemctl enable --now switchboard-agent
# Its log: journalctl -u switchboard-agent (it says "connected to {{ ws_url }}")
{% endautoescape %}
