// JSON (a phase's output or params) in a box of bounded size; a box that cannot show all of it
// offers Expand, which shows the whole JSON, wrapped, at its full height.

import { h, uid } from "./dom.js";

/** Outputs longer than this (as JSON) say their size. */
const LONG = 160;

/** Shows each box's Expand while the box clips its JSON (or once it is expanded). */
const watched = new ResizeObserver((entries) => {
  for (const { target } of entries) {
    if (!target.isConnected) watched.unobserve(target);
    else target.closest(".json-box")?.dispatchEvent(new Event("json-measure"));
  }
});

/**
 * A box showing `value` as JSON, headed `label` ("Output"; with its size when long), or null
 * for no value. `key` names the box across redraws: an expanded box whose key is in `expanded`
 * (a Set the view keeps) is drawn expanded again.
 */
export function jsonBox(value, { label, what = label.toLowerCase(), key = null, expanded = null, note = null }) {
  if (value === null || value === undefined) return null;
  const text = JSON.stringify(value, null, 2);
  const id = uid("json");
  const pre = h("pre", { id, class: "json", text });
  const toggle = h("button", { type: "button", class: "link expand", "aria-controls": id, hidden: true });
  const box = h(
    "div",
    { class: "json-box" },
    h(
      "div",
      { class: "json-head" },
      h("span", { class: "json-label", text: text.length > LONG ? `${label} (${text.length} characters)` : label }),
      toggle,
    ),
    note ? h("p", { class: "muted json-note", text: note }) : null,
    pre,
  );

  const clips = () => pre.scrollHeight > pre.clientHeight + 1 || pre.scrollWidth > pre.clientWidth + 1;
  function show(open) {
    box.classList.toggle("expanded", open);
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? `Collapse ${what}` : `Expand ${what}`;
    if (key !== null && expanded) {
      if (open) expanded.add(key);
      else expanded.delete(key);
    }
  }
  function measure() {
    toggle.hidden = !box.classList.contains("expanded") && !clips();
  }
  toggle.addEventListener("click", () => {
    show(!box.classList.contains("expanded"));
    measure();
    box.dispatchEvent(new Event("json-toggle", { bubbles: true }));
  });
  box.addEventListener("json-measure", measure);
  show(key !== null && Boolean(expanded?.has(key)));
  watched.observe(pre);
  return box;
}

/** Says that a phase's params or output passed the crisis's budget: its record alone keeps them. */
export function keptInRecord(what, ref) {
  if (!ref) return null;
  return h("p", { class: "muted", text: `${what} kept in the crisis record only (${ref.size_bytes} bytes).` });
}

/**
 * What a phase's agent is given, saying which: its params as resolved for its agent once it
 * has started, where they are kept when only in the record, or, while it awaits approval, its
 * params as the plan has them (references resolved only when it runs).
 */
export function phaseParams(phase, { key = null, expanded = null } = {}) {
  if (phase.params_ref) return keptInRecord("Params", phase.params_ref);
  if (phase.params) return jsonBox(phase.params, { label: "Params, resolved", what: "params", key, expanded });
  const planned = phase.planned_params;
  if (planned === null || planned === undefined) return null;
  if (!Object.keys(planned).length) return h("p", { class: "muted", text: "No params." });
  const note = JSON.stringify(planned).includes("${")
    ? "Not resolved yet: each ${…} reference is replaced when the phase runs, after its approval."
    : null;
  return jsonBox(planned, { label: "Params as planned", what: "params", key, expanded, note });
}
