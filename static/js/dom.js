// Small DOM helpers shared by the page's modules.

export const $ = (selector) => document.querySelector(selector);

/** A tiny DOM builder: el('a', {href: '#'}, 'text', child, ...). Text is never parsed as HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === 'class') node.className = value;
    else if (name === 'checked') node.checked = value;
    else node.setAttribute(name, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** An ISO 8601 time as the reader's local date and time, to the minute. */
export function formatTime(iso) {
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? iso : time.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function storedFlag(key) {
  try {
    return window.localStorage.getItem(key) === 'true';
  } catch {
    return false; // storage refused (privacy settings): the default
  }
}

export function storeFlag(key, on) {
  try {
    window.localStorage.setItem(key, String(on));
  } catch {
    // not kept: the page still works
  }
}

export function download(filename, blob) {
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
