// Starting a crisis: a target and either action words (made into phases by the API, as
// `liara trigger` makes them) or a missions file (a JSON list of phases), pasted or uploaded.

import { ApiError, api } from "./api.js";
import { h, uid } from "./dom.js";
import { fieldErrors } from "./forms.js";

const EXAMPLE = `[
  {"phase_id": "scan-1", "agent_id": "scan-agent-001", "action": "scan",
   "target": "target-alpha", "params": {"duration": 2}}
]`;

/** A labelled control with its help and the paragraph its API errors go to. */
function field(label, control, help, apiField) {
  const id = control.id;
  control.setAttribute("aria-describedby", `${id}-help ${id}-error`);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, text: label }),
    control,
    h("p", { id: `${id}-help`, class: "help", text: help }),
    h("p", { id: `${id}-error`, class: "field-error", "data-field": apiField }),
  );
}

export function startView(context) {
  context.title("Start a crisis");
  const stop = new AbortController();
  const target = h("input", { id: uid("target"), type: "text", required: true, autocomplete: "off" });
  const actions = h("input", { id: uid("actions"), type: "text", autocomplete: "off" });
  const missions = h("textarea", { id: uid("missions"), rows: "8", spellcheck: "false", placeholder: EXAMPLE });
  const file = h("input", { id: uid("missions-file"), type: "file", accept: ".json,application/json" });
  const submit = h("button", { type: "submit", class: "primary", text: "Start crisis" });
  const formError = h("p", { id: uid("form-error"), class: "field-error", "data-field": "*" });
  const fromActions = h("input", { type: "radio", name: "source", value: "actions", id: uid("source"), checked: true });
  const fromMissions = h("input", { type: "radio", name: "source", value: "missions", id: uid("source") });

  const actionsPart = field(
    "Actions",
    actions,
    "Action words, as for `liara trigger`: recon secure extract",
    "body.actions",
  );
  const missionsPart = h(
    "div",
    { hidden: true },
    field("Missions", missions, "A JSON list of phases, as in the Python API.", "body.missions"),
    h("div", { class: "field" }, h("label", { for: file.id, text: "Or load a missions file" }), file),
  );
  const choose = () => {
    actionsPart.hidden = !fromActions.checked;
    missionsPart.hidden = !fromMissions.checked;
  };
  fromActions.addEventListener("change", choose);
  fromMissions.addEventListener("change", choose);
  file.addEventListener("change", async () => {
    const [chosen] = file.files;
    if (!chosen) return;
    errors.clear();
    try {
      missions.value = await chosen.text();
    } catch (err) {
      missionsError(`Cannot read ${chosen.name}: ${err.message}`.replace(/\.?$/, "."));
    }
  });

  const form = h(
    "form",
    { class: "card start", novalidate: true, onsubmit: start },
    field("Target", target, "The member the crisis is about, such as target-alpha.", "body.target_member"),
    h(
      "fieldset",
      {},
      h("legend", { text: "Phases from" }),
      h("div", { class: "choice" }, fromActions, h("label", { for: fromActions.id, text: "Action words" })),
      h("div", { class: "choice" }, fromMissions, h("label", { for: fromMissions.id, text: "A missions file (JSON)" })),
    ),
    actionsPart,
    missionsPart,
    formError,
    submit,
  );
  submit.setAttribute("aria-describedby", formError.id);
  const errors = fieldErrors(form);
  /** A sentence of the page's own under the missions field (as the API's errors are shown). */
  const missionsError = (message) =>
    errors.show({ fieldErrors: [{ field: "body.missions", message }] }, { focus: true });

  /** The phases to start (null when the missions are not JSON): the API makes them from
   * action words; a missions file is only parsed here, and checked by the API. */
  async function phases(targetMember) {
    if (fromActions.checked) {
      const words = actions.value.split(/\s+/).filter(Boolean);
      const body = { target_member: targetMember, actions: words };
      return (await api("/v1/missions/from-actions", { method: "POST", body, signal: stop.signal })).missions;
    }
    try {
      return JSON.parse(missions.value);
    } catch (err) {
      missionsError(`The missions are not valid JSON: ${err.message}.`);
      return null;
    }
  }

  async function start(event) {
    event.preventDefault();
    submit.disabled = true;
    errors.clear();
    try {
      const targetMember = target.value.trim();
      const chosen = await phases(targetMember);
      if (chosen === null) return;
      const body = { target_member: targetMember, missions: chosen };
      const started = await api("/v1/crises", { method: "POST", body, signal: stop.signal });
      context.go(`#/crises/${encodeURIComponent(started.workflow_id)}`, `Started crisis ${started.crisis_id}.`);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) context.fail(err);
      else if (!errors.show(err, { focus: true })) formError.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  }

  const element = h(
    "section",
    { class: "view" },
    h("h1", { tabindex: "-1", text: "Start a crisis" }),
    h("p", { class: "lead", text: "The crisis starts at once; its page then follows it live." }),
    form,
  );
  return { name: "start", element, leave: () => stop.abort() };
}
