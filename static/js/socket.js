// The browser socket to /ws/topology/: parsed frames out, reconnection with backoff, status changes.

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30000;
// The server closed the socket because its user or credential no longer stands (deactivated, role
// changed, logged out, token revoked or expired): it says why in a `session.ended` frame first.
export const CLOSE_FORBIDDEN = 4003;

/**
 * Reconnects with exponential backoff (0.5 s doubling to 30 s, with jitter). `onStatus(status,
 * delay, failures)` hears 'connecting', 'open' and 'closed' (with the delay before the next try),
 * and 'ended' when the server ended the session: then nothing reconnects, and a banner says why.
 */
export class Connection {
  constructor(url, { onFrame, onStatus }) {
    this.url = url;
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.failures = 0;
    this.socket = null;
    this.endedReason = null;
  }

  open() {
    this.onStatus('connecting');
    this.socket = new WebSocket(this.url);
    this.socket.addEventListener('open', () => {
      this.failures = 0;
      this.onStatus('open');
    });
    this.socket.addEventListener('message', (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        console.warn('switchboard: unparsable frame', event.data);
        return;
      }
      if (frame.type === 'session.ended') this.endedReason = frame.reason;
      else this.onFrame(frame);
    });
    this.socket.addEventListener('close', (event) => {
      this.socket = null;
      if (event.code === CLOSE_FORBIDDEN) {
        this.onStatus('ended');
        showSessionEnded(this.endedReason);
        return;
      }
      const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.failures) * (0.5 + Math.random() / 2);
      this.failures += 1;
      this.onStatus('closed', delay, this.failures);
      setTimeout(() => this.open(), delay);
    });
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }
}

/** A banner at the top of the page: the live view stopped because the session ended, and why. */
export function showSessionEnded(reason) {
  const banner = document.createElement('div');
  banner.className = 'session-ended';
  banner.setAttribute('role', 'alert');
  const text = document.createElement('span');
  text.textContent = `Live updates stopped: ${reason || 'your session ended'}. `;
  const reload = document.createElement('a');
  reload.href = location.href;
  reload.textContent = 'Reload the page (or log in again)';
  banner.append(text, reload);
  document.body.prepend(banner);
}
