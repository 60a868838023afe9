// The crises, newest first, filtered by target, status and initiator, polled every few seconds.

import { api } from "./api.js";
import { badge, h, keyed, uid, when, words } from "./dom.js";
import { fieldErrors } from "./forms.js";
import { poll } from "./poll.js";
import { crisisStatus } from "./status.js";

const POLL_MS = 3000;
const PAGE = 25;

function progress(summary) {
  if (!summary) return h("span", { class: "muted", text: "not known" });
  const { completed_phases: done, failed_phases: failed, total_phases: total } = summary;
  return h(
    "span",
    { class: "progress" },
    h("progress", { max: String(total), value: String(done), "aria-hidden": "true" }),
    ` ${done} of ${total} done`,
    failed ? `, ${failed} failed` : "",
  );
}

function row(crisis) {
  return h(
    "tr",
    {},
    h(
      "td",
      { "data-label": "Crisis" },
      h("a", { href: `#/crises/${encodeURIComponent(crisis.workflow_id)}`, text: crisis.workflow_id }),
    ),
    h("td", { "data-label": "Target", text: crisis.target ?? "" }),
    h("td", { "data-label": "Status" }, badge(crisisStatus(crisis))),
    h("td", { "data-label": "Progress" }, progress(crisis.summary)),
    h("td", { "data-label": "Started by", text: crisis.initiated_by ?? "" }),
    h("td", { "data-label": "Started" }, when(crisis.started_at)),
  );
}

function filter(name, label, control, errorFor) {
  const id = uid(name);
  control.id = id;
  control.name = name;
  control.setAttribute("aria-describedby", `${id}-error`);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, text: label }),
    control,
    h("p", { id: `${id}-error`, class: "field-error", "data-field": errorFor }),
  );
}

export function crisesView(context, params) {
  context.title("Crises");
  const stop = new AbortController();
  const size = params.get("limit") || String(PAGE); // the API says if it is not a page size
  let pages = 1; // pages shown, each read with the cursor the one before gave
  const status = h(
    "select",
    {},
    h("option", { value: "", text: "any" }),
    context.settings.statuses.map((name) => h("option", { value: name, text: words(name) })),
  );
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter crises",
      onsubmit: (event) => {
        event.preventDefault();
        const chosen = new URLSearchParams([...new FormData(form)].filter(([, value]) => value));
        location.hash = `#/crises${chosen.size ? `?${chosen}` : ""}`;
      },
    },
    filter("target", "Target", h("input", { type: "text", autocomplete: "off" }), "query.target"),
    filter("status", "Status", status, "query.status"),
    filter("initiated_by", "Started by", h("input", { type: "text", autocomplete: "off" }), "query.initiated_by"),
    h(
      "div",
      { class: "buttons" },
      h("button", { type: "submit", text: "Filter" }),
      h("a", { href: "#/crises", class: "button", text: "Clear" }),
    ),
  );
  for (const name of ["target", "status", "initiated_by"]) form.elements[name].value = params.get(name) ?? "";

  const body = h("tbody");
  const empty = h("p", { class: "muted", hidden: true, text: "No crises match." });
  const updated = h("p", { class: "muted updated" });
  const more = h("button", {
    type: "button",
    hidden: true,
    text: "Show more",
    onclick: async () => {
      pages += 1;
      await refresh();
    },
  });
  const errors = fieldErrors(form);

  /** The newest `pages` pages, each after the one read just before it, so none is skipped
   * when new crises push the others down; a crisis read twice (moved meanwhile) shows once. */
  async function read(filters) {
    const crises = new Map();
    let cursor = null;
    for (let page = 0; page < pages; page += 1) {
      const query = new URLSearchParams(filters);
      if (cursor) query.set("cursor", cursor);
      const answer = await api(`/v1/crises?${query}`, { signal: stop.signal });
      for (const crisis of answer.crises) if (!crises.has(crisis.workflow_id)) crises.set(crisis.workflow_id, crisis);
      cursor = answer.next_cursor;
      if (!cursor) break;
    }
    return { crises: [...crises.values()], more: cursor !== null };
  }

  async function refresh() {
    const filters = new URLSearchParams([...new FormData(form)].filter(([, value]) => value));
    filters.set("limit", size);
    filters.set("progress", "true");
    try {
      const shown = await read(filters);
      errors.clear();
      context.recover("crises");
      keyed(body, shown.crises, (crisis) => crisis.workflow_id, row);
      empty.hidden = shown.crises.length > 0;
      more.hidden = !shown.more;
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshed every ${POLL_MS / 1000} s.`;
    } catch (err) {
      if (!errors.show(err)) context.fail(err, "crises");
    }
  }

  poll(refresh, POLL_MS, stop.signal);
  const element = h(
    "section",
    { class: "view" },
    h("h1", { tabindex: "-1", text: "Crises" }),
    form,
    updated,
    h(
      "div",
      { class: "table" },
      h(
        "table",
        { class: "crises" },
        h("caption", { class: "visually-hidden", text: "Crises, newest first" }),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Crisis", "Target", "Status", "Progress", "Started by", "Started"].map((name) =>
              h("th", { scope: "col", text: name }),
            ),
          ),
        ),
        body,
      ),
    ),
    empty,
    more,
  );
  return { name: "crises", element, leave: () => stop.abort() };
}
