// Editing one desired topology object by object (the edit API under /api/v1/topologies/<name>/):
// the forms for networks, nodes, attachments and routes, shared by the Networks page and the
// topology graph's context menu. Every write carries the version last read; a stale one (409) makes
// the editor read the topology again, so submitting the same form once more saves on top of it.
// Nothing is applied here: the page shows the plan afterwards (`onChange`).

import { api, subUrl } from './api.js';
import { openForm } from './forms.js';

const MODES = ['bridge', 'none', 'host'];

/** A number field: digits become a number, anything else goes as typed (the API names the field). */
function numberOrText(text) {
  return /^\d+$/.test(text) ? Number(text) : text;
}

/** Only the fields given: empty text left out, numbers as numbers. */
function given(values, numeric = []) {
  return Object.fromEntries(
    Object.entries(values)
      .filter(([, value]) => value !== '')
      .map(([key, value]) => [key, numeric.includes(key) ? numberOrText(value) : value]),
  );
}

/** The values the user changed in a form opened with `initial`: a PATCH leaves the rest as stored. */
function changed(values, initial) {
  return Object.fromEntries(Object.entries(values).filter(([key, value]) => String(value) !== String(initial[key] ?? '')));
}

/** A comma- or space-separated list: "127.0.0.1:8080:80/tcp, 8443:443" -> ["127.0.0.1:8080:80/tcp", "8443:443"]. */
function itemList(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

export class TopologyEditor {
  /**
   * `topology` is the detail the API answered (GET /api/v1/topologies/<name>/); `onChange(detail,
   * what)` hears every successful edit with the new detail and a sentence saying what changed.
   */
  constructor(topology, { onChange }) {
    this.topology = topology;
    this.onChange = onChange;
  }

  /** Read the topology again (after a conflict: someone changed it meanwhile). */
  async reload() {
    const { status, data } = await api(this.topology.url);
    if (status === 200) this.topology = data;
  }

  /** One write with the current version; answers {status, data} (data: the detail, or the error). */
  async write(method, parts, body = {}, what = '') {
    const version = this.topology.version;
    const answer =
      method === 'DELETE'
        ? await api(subUrl(this.topology, ...parts, { version, ...body }), { method })
        : await api(subUrl(this.topology, ...parts), { method, body: { version, ...body } });
    if (answer.status === 200 || answer.status === 201) {
      this.topology = answer.data;
      this.onChange(answer.data, what);
    } else if (answer.status === 409 || answer.status === 412) {
      await this.reload();
      const stale = answer.data?.fields?.version;
      if (stale && this.topology.version !== version) {
        // Said once, at the top of the form: what the server said, and that submitting again works now.
        const { version: _, ...fields } = answer.data.fields;
        const message = `${stale.join(' ')} It has been read again (version ${this.topology.version}): submit again to save on top of it.`;
        answer.data = { ...answer.data, message, fields };
      }
    }
    return answer;
  }

  /** A write without a form (delete, detach): the error message, or null when it worked. */
  async act(method, parts, body, what) {
    const { status, data } = await this.write(method, parts, body, what);
    if (status >= 200 && status < 300) return null;
    return data?.message ?? (status === 403 ? 'Only operators may change topologies.' : `The server answered ${status}.`);
  }

  networkNames() {
    return this.topology.networks.map((n) => n.name);
  }

  addNetwork() {
    return openForm({
      title: `Add a network to ${this.topology.name}`,
      intro: 'A bridge on the host; nodes attached to it get an address in its subnet.',
      submitLabel: 'Add network',
      fields: [
        { name: 'name', label: 'Name', required: true, placeholder: 'front' },
        { name: 'subnet', label: 'Subnet', required: true, placeholder: '198.18.1.0/24' },
        { name: 'gateway', label: 'Gateway (optional)', hint: 'The bridge’s address; the first of the subnet if empty.' },
        { name: 'mtu', label: 'MTU (optional)', type: 'number' },
        { name: 'nat', label: 'NAT to the host’s uplink', type: 'checkbox' },
        { name: 'driver', label: 'Driver', type: 'select', options: [['bridge', 'bridge'], ['vxlan', 'vxlan (overlay between hosts)']] },
        { name: 'vni', label: 'VNI', type: 'number', showWhen: { name: 'driver', value: 'vxlan' } },
        { name: 'local', label: 'Local address (optional)', showWhen: { name: 'driver', value: 'vxlan' } },
        { name: 'remote', label: 'Remote address (optional)', showWhen: { name: 'driver', value: 'vxlan' } },
        { name: 'group', label: 'Multicast group (optional)', showWhen: { name: 'driver', value: 'vxlan' } },
        { name: 'dstport', label: 'UDP port (optional)', type: 'number', showWhen: { name: 'driver', value: 'vxlan' } },
        { name: 'learning', label: 'MAC learning', type: 'checkbox', showWhen: { name: 'driver', value: 'vxlan' } },
        {
          name: 'hosts',
          label: 'Spans hosts (optional)',
          placeholder: 'lab1, lab2, lab3',
          hint: 'Host names: the network reaches each, over VXLAN between their underlay addresses (the Hosts page sets them). Empty: this host only; then give local and remote yourself.',
          showWhen: { name: 'driver', value: 'vxlan' },
        },
      ],
      onSubmit: (values) => {
        const body = given(values, ['mtu', 'vni', 'dstport']);
        if (values.driver !== 'vxlan') delete body.learning;
        if (body.hosts) body.hosts = itemList(body.hosts);
        return this.write('POST', ['networks'], body, `network ${values.name} added`);
      },
    });
  }

  editNetwork(name) {
    const network = this.topology.networks.find((n) => n.name === name) ?? {};
    const initial = { subnet: network.subnet, gateway: network.gateway, mtu: network.mtu, nat: Boolean(network.nat) };
    return openForm({
      title: `Edit network ${name}`,
      submitLabel: 'Save',
      fields: [
        { name: 'subnet', label: 'Subnet', value: initial.subnet, required: true },
        { name: 'gateway', label: 'Gateway', value: initial.gateway },
        { name: 'mtu', label: 'MTU', type: 'number', value: initial.mtu ?? '', hint: 'Empty: the kernel’s default.' },
        { name: 'nat', label: 'NAT to the host’s uplink', type: 'checkbox', value: initial.nat },
      ],
      onSubmit: (values) => {
        const body = changed(values, initial);
        if ('mtu' in body) body.mtu = body.mtu === '' ? null : numberOrText(body.mtu);
        if (body.gateway === '') body.gateway = null; // back to the subnet's first address
        return this.write('PATCH', ['networks', name], body, `network ${name} changed`);
      },
    });
  }

  deleteNetwork(name) {
    return this.act('DELETE', ['networks', name], {}, `network ${name} deleted`);
  }

  /** The node form; `network` is preselected (the graph's "Add node on <network>…"). */
  addNode({ network = null } = {}) {
    const networks = this.networkNames();
    const span = this.topology.span; // a topology spanning hosts: say which host the node runs on
    const nodes = this.topology.nodes.map((n) => n.name);
    return openForm({
      title: network ? `Add a node on ${network}` : `Add a node to ${this.topology.name}`,
      intro: 'A network namespace with one interface on each network ticked.',
      submitLabel: 'Add node',
      fields: [
        { name: 'name', label: 'Name', required: true, placeholder: 'web1' },
        {
          name: 'mode',
          label: 'Mode',
          type: 'select',
          options: [...MODES.map((m) => [m, m]), ...nodes.map((n) => [`container:${n}`, `container:${n} (share its namespace)`])],
        },
        ...networks.flatMap((w) => [
          { name: `networks.${w}`, label: `On network ${w}`, type: 'checkbox', value: w === network || networks.length === 1 },
          { name: `networks.${w}.address`, label: `Address on ${w} (optional)`, hint: 'Allocated from the subnet if empty.' },
        ]),
        { name: 'ports', label: 'Published ports (optional)', placeholder: '127.0.0.1:8080:80/tcp', hint: 'Comma-separated: [host_ip:]host_port:container_port[/tcp|udp].' },
        ...(span
          ? [{ name: 'host', label: 'Host', type: 'select', options: span.hosts.map((h) => [h, h]), hint: 'The host it runs on; its networks must reach that host.' }]
          : []),
      ],
      onSubmit: (values) => this.write('POST', ['nodes'], this.nodeBody(values, networks), `node ${values.name} added`),
    });
  }

  /** The node form's values as the API takes them. */
  nodeBody(values, networks) {
    const body = { name: values.name, mode: values.mode };
    const attached = networks.filter((w) => values[`networks.${w}`]);
    if (attached.length) {
      body.networks = Object.fromEntries(attached.map((w) => [w, given({ address: values[`networks.${w}.address`] })]));
    }
    if (values.ports) body.ports = itemList(values.ports);
    if (values.host && values.host !== this.topology.span?.home) body.host = values.host;
    return body;
  }

  editNode(name) {
    const node = this.topology.nodes.find((n) => n.name === name) ?? {};
    const others = this.topology.nodes.filter((n) => n.name !== name).map((n) => n.name);
    const initial = {
      mode: node.mode === 'container' ? `container:${node.container}` : node.mode,
      ports: (node.ports ?? []).map((p) => p.text).join(', '),
    };
    return openForm({
      title: `Edit node ${name}`,
      intro: 'Its networks are changed with Attach and Detach.',
      submitLabel: 'Save',
      fields: [
        { name: 'mode', label: 'Mode', type: 'select', value: initial.mode, options: [...MODES.map((m) => [m, m]), ...others.map((n) => [`container:${n}`, `container:${n}`])] },
        { name: 'ports', label: 'Published ports', value: initial.ports, hint: 'Comma-separated; empty: none.' },
      ],
      onSubmit: (values) => {
        const body = changed(values, initial);
        if ('ports' in body) body.ports = itemList(body.ports);
        return this.write('PATCH', ['nodes', name], body, `node ${name} changed`);
      },
    });
  }

  deleteNode(name) {
    return this.act('DELETE', ['nodes', name], {}, `node ${name} deleted`);
  }

  attach(node) {
    const attached = new Set((this.topology.nodes.find((n) => n.name === node)?.attachments ?? []).map((a) => a.network));
    const free = this.networkNames().filter((w) => !attached.has(w));
    return openForm({
      title: `Attach ${node} to a network`,
      intro: free.length ? null : `${node} is on every network of ${this.topology.name}: add a network first.`,
      submitLabel: 'Attach',
      fields: [
        { name: 'network', label: 'Network', type: 'select', options: free.map((w) => [w, w]) },
        { name: 'address', label: 'Address (optional)', hint: 'Allocated from the subnet if empty.' },
      ],
      onSubmit: (values) => this.write('POST', ['nodes', node, 'attach'], given(values), `${node} attached to ${values.network}`),
    });
  }

  detach(node, network) {
    return this.act('POST', ['nodes', node, 'detach'], { network }, `${node} detached from ${network}`);
  }

  addRoute(node) {
    return openForm({
      title: `Add a route to ${node}`,
      submitLabel: 'Add route',
      fields: [
        { name: 'to', label: 'Destination', required: true, placeholder: '198.18.2.0/24' },
        { name: 'via', label: 'Gateway (optional)', placeholder: '198.18.1.1' },
        { name: 'dev', label: 'Interface (optional)', placeholder: 'eth0' },
      ],
      onSubmit: (values) => this.write('POST', ['nodes', node, 'routes'], given(values), `route to ${values.to} added to ${node}`),
    });
  }

  removeRoute(node, to) {
    return this.act('DELETE', ['nodes', node, 'routes'], { to }, `route to ${to} removed from ${node}`);
  }
}
