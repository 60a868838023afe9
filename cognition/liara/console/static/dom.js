// Building and formatting the page's elements.

const present = (children) =>
  children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false);

/** Replaces `node`'s children with these (null, undefined and false left out). */
export function fill(node, ...children) {
  node.replaceChildren(...present(children));
}

/** An element: h("a", {href: "#/", class: "x", onclick: fn}, "text", child, [more]). */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "text") element.textContent = value;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (typeof value === "boolean" && key in element) element[key] = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  element.append(...present(children));
  return element;
}

let ids = 0;
/** An id unique in the page, for labels and descriptions. */
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** Children of `container`, one per item by key, rebuilt only where an item changed. */
export function keyed(container, items, key, render) {
  const existing = new Map([...container.children].map((child) => [child.dataset.key, child]));
  const wanted = items.map((item) => {
    const id = key(item);
    const signature = JSON.stringify(item);
    let node = existing.get(id);
    if (!node || node.dataset.signature !== signature) {
      const fresh = render(item);
      fresh.dataset.key = id;
      fresh.dataset.signature = signature;
      if (node) node.replaceWith(fresh);
      node = fresh;
    }
    existing.delete(id);
    return node;
  });
  for (const stale of existing.values()) stale.remove();
  wanted.forEach((node, index) => {
    if (container.children[index] !== node) container.insertBefore(node, container.children[index] ?? null);
  });
}

/** A status as words: "awaiting_approval" reads "awaiting approval". */
export function words(status) {
  return String(status ?? "unknown").replaceAll("_", " ");
}

const SYMBOLS = {
  completed: "✓",
  failed: "✗",
  running: "▶",
  awaiting_approval: "‖",
  pending: "○",
  skipped: "↷",
  cancelled: "■",
  compensating: "↺",
  terminated: "■",
  timed_out: "◷",
};

/** A status badge: a symbol and the status in words, or `text` that says more (colour only
 * repeats what they say). */
export function badge(status, text = words(status)) {
  return h(
    "span",
    { class: `badge status-${status}` },
    h("span", { "aria-hidden": "true", text: SYMBOLS[status] ?? "•" }),
    ` ${text}`,
  );
}

/** A moment as the reader's local date and time. */
export function when(iso) {
  if (!iso) return null;
  const date = new Date(iso);
  return h("time", { datetime: iso, text: date.toLocaleString() });
}

/** A duration in milliseconds, as people say it. */
export function duration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Term and description pairs (those with no description left out). */
export function facts(pairs, className = "facts") {
  return h(
    "dl",
    { class: className },
    pairs
      .filter(([, value]) => value !== null && value !== undefined && value !== "")
      .map(([term, value]) => h("div", {}, h("dt", { text: term }), h("dd", {}, value))),
  );
}
