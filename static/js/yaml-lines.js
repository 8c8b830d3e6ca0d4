// Where a field of a topology file is written: "networks.front.subnet" -> its line in the YAML text,
// so an error is shown on the offending line. Pure (node --test): block-style keys are followed by
// indentation; a key written inside a flow mapping ({subnet: …}) is found on its parent's line.

const KEY = /^(\s*)(?:-\s+)?("?)([^\s"'#:{}[\],][^"#:{}[\],]*?)\2\s*:(\s|$)/;

/** Split "nodes.web1.ports[2]" into ["nodes", "web1", "ports"] (list positions are not keys). */
export function pathKeys(path) {
  return path.split('.').map((part) => part.replace(/\[\d+\]$/, '')).filter(Boolean);
}

/**
 * The 1-based line of the deepest key of `path` found in `text`, or null when not even its first
 * key is there. A key is looked for only inside the block of the key before it.
 */
export function lineOfPath(text, path) {
  const lines = text.split('\n');
  const keys = pathKeys(path);
  let found = null;
  let from = 0;
  let to = lines.length;
  let parentIndent = -1;
  for (const key of keys) {
    let hit = null;
    for (let i = from; i < to; i += 1) {
      const match = KEY.exec(lines[i]);
      if (!match) {
        if (found !== null && flowHas(lines[i], key) && indentOf(lines[i]) > parentIndent) hit ??= { line: i, indent: indentOf(lines[i]) };
        continue;
      }
      const indent = match[1].length;
      if (indent <= parentIndent) break; // left the parent's block
      if (match[3] === key) {
        hit = { line: i, indent };
        break;
      }
    }
    if (hit === null) {
      // Written inline on the parent's own line, e.g. `front: {subnet: …}`: that line is the answer.
      if (found !== null && flowHas(lines[found - 1], key)) return found;
      break;
    }
    found = hit.line + 1;
    parentIndent = hit.indent;
    from = hit.line + 1;
    to = blockEnd(lines, hit.line, hit.indent);
    if (flowHas(lines[hit.line].slice(lines[hit.line].indexOf(':') + 1), keys[keys.indexOf(key) + 1] ?? '\0')) return found;
  }
  return found;
}

function indentOf(line) {
  return line.length - line.trimStart().length;
}

function flowHas(line, key) {
  return new RegExp(`[{,\\s]${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*:`).test(` ${line}`);
}

/** Index after the last line belonging to the block of the key at `start` (indented deeper). */
function blockEnd(lines, start, indent) {
  for (let i = start + 1; i < lines.length; i += 1) {
    const trimmed = lines[i].trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    if (indentOf(lines[i]) <= indent && !trimmed.startsWith('- ')) return i;
    if (indentOf(lines[i]) < indent) return i;
  }
  return lines.length;
}
