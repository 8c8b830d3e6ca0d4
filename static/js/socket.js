// The browser socket to /ws/topology/: parsed frames out, reconnection with backoff, status changes.

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 30000;

/**
 * Reconnects with exponential backoff (0.5 s doubling to 30 s, with jitter). `onStatus(status,
 * delay, failures)` hears 'connecting', 'open' and 'closed' (with the delay before the next try).
 */
export class Connection {
  constructor(url, { onFrame, onStatus }) {
    this.url = url;
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.failures = 0;
    this.socket = null;
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
      this.onFrame(frame);
    });
    this.socket.addEventListener('close', () => {
      this.socket = null;
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
