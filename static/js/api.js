// The REST API as every page's scripts call it: JSON in and out, the session's CSRF token on
// writes, the answer as {status, data} (data is the parsed JSON, or the text of anything else).

/** The CSRF token Django keeps in the `csrftoken` cookie (readable: CSRF_COOKIE_HTTPONLY is off). */
function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : '';
}

/** A JSON request to the API; `keepalive` lets it finish while the page unloads. */
export async function api(url, { method = 'GET', body, keepalive = false } = {}) {
  const response = await fetch(url, {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json', 'Content-Type': 'application/json', 'X-CSRFToken': csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
    keepalive,
  });
  const type = response.headers.get('content-type') ?? '';
  return { status: response.status, data: type.includes('json') ? await response.json() : await response.text() };
}

/**
 * The URL of something under a topology's detail URL (`topology.url`, which may carry ?host=):
 * subUrl(t, 'nodes', 'web1') -> /api/v1/topologies/demo/nodes/web1/?host=alpha; `params` are
 * added to the query.
 */
export function subUrl(topology, ...parts) {
  const params = typeof parts.at(-1) === 'object' ? parts.pop() : {};
  const [path, query] = topology.url.split('?');
  const search = new URLSearchParams(query ?? '');
  for (const [key, value] of Object.entries(params)) search.set(key, String(value));
  const suffix = parts.map((part) => `${encodeURIComponent(part)}/`).join('');
  const text = search.toString();
  return `${path}${suffix}${text ? `?${text}` : ''}`;
}

/**
 * `read` (an async function of no arguments) run at most once at a time: calls made while it runs
 * fold into one more run after it, whose promise they get. A burst of "something changed" (three
 * operation.status frames per operation) costs two reads instead of one each.
 */
export function coalesced(read) {
  let current = null;
  let next = null;
  const call = () => {
    if (!current) {
      current = read().finally(() => {
        current = null;
      });
      return current;
    }
    next ??= current.then(
      () => {
        next = null;
        return call();
      },
      () => {
        next = null;
        return call();
      },
    );
    return next;
  };
  return call;
}
