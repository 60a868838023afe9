// Starting a crisis: its phases from action words (made into phases by the API, as
// `liara trigger` makes them), a missions file (a JSON list of phases, pasted or uploaded) or a
// playbook of the service (with its inputs), and the options of any crisis (failure policy,
// priority, phases run at once). Each error is shown at its field, in words.

import { ApiError, api } from "./api.js";
import { h, uid } from "./dom.js";
import { fieldErrors } from "./forms.js";

const EXAMPLE = `[
  {"phase_id": "scan-1", "agent_id": "scan-agent-001", "action": "scan",
   "target": "target-alpha", "params": {"duration": 2}}
]`;

/** A playbook input's type in words, as a value of it is asked for. */
const KINDS = {
  string: "text",
  integer: "a whole number",
  number: "a number",
  boolean: "true or false",
  object: "a JSON object",
  array: "a JSON list",
};

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

/** A select of `[value, text]` choices. */
function select(id, choices) {
  return h("select", { id }, choices.map(([value, text]) => h("option", { value, text })));
}

/** One input of a playbook: its control (a JSON text for an object or a list, a choice for a
 * boolean, a line otherwise) and what the field says of it. */
function inputField(name, spec) {
  const id = uid(`input-${name}`);
  let control;
  if (spec.type === "object" || spec.type === "array") {
    control = h("textarea", { id, rows: "3", spellcheck: "false" });
  } else if (spec.type === "boolean") {
    control = select(id, [
      ["", spec.default === null ? "not given" : `default (${spec.default})`],
      ["true", "true"],
      ["false", "false"],
    ]);
  } else {
    const numeric = { integer: "numeric", number: "decimal" }[spec.type] ?? null;
    control = h("input", { id, type: "text", autocomplete: "off", spellcheck: "false", inputmode: numeric });
  }
  control.dataset.input = name;
  const given =
    spec.default !== null && spec.default !== undefined
      ? `Default: ${JSON.stringify(spec.default)}.`
      : spec.required
        ? "Required."
        : "Optional.";
  const kind = spec.type === "string" ? null : `${KINDS[spec.type] ?? spec.type}.`;
  const described = spec.description ? spec.description.replace(/\.?$/, ".") : null;
  const help = [described, kind && kind[0].toUpperCase() + kind.slice(1), given].filter(Boolean).join(" ");
  return field(spec.required ? name : `${name} (optional)`, control, help, `body.inputs.${name}`);
}

export function startView(context) {
  context.title("Start a crisis");
  const stop = new AbortController();
  const maxParallel = context.settings.max_parallel;
  const target = h("input", { id: uid("target"), type: "text", required: true, autocomplete: "off" });
  const actions = h("input", { id: uid("actions"), type: "text", autocomplete: "off" });
  const missions = h("textarea", { id: uid("missions"), rows: "8", spellcheck: "false", placeholder: EXAMPLE });
  const file = h("input", { id: uid("missions-file"), type: "file", accept: ".json,application/json" });
  const playbook = h("select", { id: uid("playbook") });
  const inputs = h("div", { class: "inputs" });
  const submit = h("button", { type: "submit", class: "primary", text: "Start crisis" });
  const formError = h("p", { id: uid("form-error"), class: "field-error", "data-field": "*" });
  const fromActions = h("input", { type: "radio", name: "source", value: "actions", id: uid("source"), checked: true });
  const fromMissions = h("input", { type: "radio", name: "source", value: "missions", id: uid("source") });
  const fromPlaybook = h("input", { type: "radio", name: "source", value: "playbook", id: uid("source") });
  const policy = select(uid("failure-policy"), [
    ["", "default"],
    ["continue", "continue: the other phases still run"],
    ["abort", "abort: the crisis stops at the first failed phase"],
  ]);
  const priority = select(uid("priority"), [
    ["", "default (3)"],
    ["1", "1, most urgent"],
    ["2", "2"],
    ["3", "3"],
    ["4", "4"],
    ["5", "5, least urgent"],
  ]);
  const parallel = h("input", { id: uid("max-parallel"), type: "number", min: "1", max: maxParallel, step: "1" });
  /** What the console says of an option the API refuses, instead of the API's own words. */
  const optionWords = {
    "body.failure_policy": "Choose continue or abort, or leave it to the default.",
    "body.priority": "Choose a priority from 1 (most urgent) to 5, or leave it to the default (3).",
    "body.max_parallel": `Give a whole number from 1 to ${maxParallel}, or leave it empty for the default.`,
  };
  let playbooks = []; // as GET /v1/playbooks lists them

  const targetPart = field(
    "Target",
    target,
    "The member the crisis is about, such as target-alpha.",
    "body.target_member",
  );
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
  const playbookHelp = "A playbook of the service's playbooks directory; its target comes from its inputs.";
  const playbookPart = h(
    "div",
    { hidden: true },
    field("Playbook", playbook, playbookHelp, "playbook"),
    h("fieldset", { class: "inputs-part", hidden: true }, h("legend", { text: "Its inputs" }), inputs),
  );
  const optionsPart = h(
    "fieldset",
    {},
    h("legend", { text: "Options" }),
    h("p", { class: "help", text: "Left to the default, a playbook's own options apply." }),
    field("Failure policy", policy, "What a failed phase does to the others.", "body.failure_policy"),
    field("Priority", priority, "Urgent crises overtake a backlog of others.", "body.priority"),
    field(
      "Max parallel",
      parallel,
      `The phases of a graph that run at once, at most: 1 to ${maxParallel} (4 if left empty).`,
      "body.max_parallel",
    ),
  );

  const chosenPlaybook = () => playbooks.find((book) => book.name === playbook.value) ?? null;
  function showPlaybook() {
    const book = chosenPlaybook();
    const help = playbookPart.querySelector(".help");
    help.textContent = book
      ? `${book.description.replace(/\.?$/, ".")} ${book.phases} phases.`.trim()
      : playbooks.length
        ? playbookHelp
        : "The service has no playbooks: it reads them from its playbooks directory (LIARA_PLAYBOOKS).";
    const entries = Object.entries(book?.inputs ?? {});
    inputs.replaceChildren(...entries.map(([name, spec]) => inputField(name, spec)));
    inputs.parentElement.hidden = !entries.length;
  }
  function choose() {
    errors.clear();
    targetPart.hidden = fromPlaybook.checked;
    actionsPart.hidden = !fromActions.checked;
    missionsPart.hidden = !fromMissions.checked;
    playbookPart.hidden = !fromPlaybook.checked;
  }
  for (const radio of [fromActions, fromMissions, fromPlaybook]) radio.addEventListener("change", choose);
  playbook.addEventListener("change", () => {
    errors.clear();
    showPlaybook();
  });
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
    h(
      "fieldset",
      {},
      h("legend", { text: "Phases from" }),
      h("div", { class: "choice" }, fromActions, h("label", { for: fromActions.id, text: "Action words" })),
      h("div", { class: "choice" }, fromMissions, h("label", { for: fromMissions.id, text: "A missions file (JSON)" })),
      h("div", { class: "choice" }, fromPlaybook, h("label", { for: fromPlaybook.id, text: "A playbook" })),
    ),
    targetPart,
    actionsPart,
    missionsPart,
    playbookPart,
    optionsPart,
    formError,
    submit,
  );
  submit.setAttribute("aria-describedby", formError.id);
  const errors = fieldErrors(form);
  /** Sentences of the page's own at the fields they name (as the API's errors are shown). */
  const fail = (problems) => errors.show({ fieldErrors: problems }, { focus: true });
  const missionsError = (message) => fail([{ field: "body.missions", message }]);

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

  /** The options chosen (null, with the problems shown, when one cannot be sent). */
  function options() {
    const chosen = {};
    if (policy.value) chosen.failure_policy = policy.value;
    if (priority.value) chosen.priority = Number(priority.value);
    if (parallel.validity.badInput) {
      fail([{ field: "body.max_parallel", message: optionWords["body.max_parallel"] }]);
      return null;
    }
    if (parallel.value !== "") chosen.max_parallel = Number(parallel.value);
    return chosen;
  }

  /** The playbook's inputs as given (null, with the problems shown, when one is missing or is
   * not JSON); an empty optional input is left to its default, and the API converts the text
   * of a number or a boolean. */
  function inputValues(book) {
    const values = {};
    const problems = [];
    for (const control of inputs.querySelectorAll("[data-input]")) {
      const name = control.dataset.input;
      const spec = book.inputs[name];
      const text = spec.type === "string" ? control.value : control.value.trim();
      if (text === "") {
        if (spec.required && (spec.default === null || spec.default === undefined))
          problems.push({ field: `body.inputs.${name}`, message: `Give ${name}: the playbook needs it.` });
        continue;
      }
      if (spec.type === "object" || spec.type === "array") {
        try {
          values[name] = JSON.parse(text);
        } catch {
          problems.push({ field: `body.inputs.${name}`, message: `Give ${name} as ${KINDS[spec.type]}.` });
        }
      } else {
        values[name] = text;
      }
    }
    if (problems.length) {
      fail(problems);
      return null;
    }
    return values;
  }

  /** An error the API gave a playbook's start, at the input it is about, in words; null when
   * it is about no one input. */
  function inputProblem(message, book) {
    const at = (name, sentence) => (name in book.inputs ? { field: `body.inputs.${name}`, message: sentence } : null);
    let match = message.match(/needs input '([^']+)'/);
    if (match) return at(match[1], `Give ${match[1]}: the playbook needs it.`);
    match = message.match(/^Input '([^']+)' of playbook \S+ is (\w+), not (.*)\.$/);
    if (match) return at(match[1], `Give ${match[1]} as ${KINDS[match[2]] ?? match[2]}, not ${match[3]}.`);
    match = message.match(/target_member: ([^;]+?)(?:;| \(and |\.$)/);
    const named = book.target_member.match(/\$\{inputs\.([A-Za-z_][A-Za-z0-9_]*)\}/);
    if (match && named) return at(named[1], `${named[1]} names the crisis's target: ${match[1]}.`);
    return null;
  }

  /** The API's field errors as this form shows them: an option's in the console's words, a
   * playbook's at the input it is about. */
  function placed(err, book) {
    return err.fieldErrors.map(({ field: name, message }) => {
      if (name in optionWords) return { field: name, message: optionWords[name] };
      if (name === "request" && book) return inputProblem(message, book) ?? { field: name, message };
      // An input's own problem ("is not a valid target ..."), said of the input by its name.
      const input = name.match(/^body\.inputs\.([^.]+)$/);
      if (input && /^[a-z]/.test(message)) message = `${input[1]} ${message}`.replace(/\.?$/, ".");
      return { field: name, message };
    });
  }

  async function start(event) {
    event.preventDefault();
    submit.disabled = true;
    errors.clear();
    const book = fromPlaybook.checked ? chosenPlaybook() : null;
    try {
      if (fromPlaybook.checked && !book) {
        fail([{ field: "playbook", message: "Choose a playbook." }]);
        return;
      }
      const chosen = options();
      if (chosen === null) return;
      let started;
      if (book) {
        const given = inputValues(book);
        if (given === null) return;
        const body = { inputs: given, ...chosen };
        const path = `/v1/playbooks/${encodeURIComponent(book.name)}/crises`;
        started = await api(path, { method: "POST", body, signal: stop.signal });
      } else {
        const targetMember = target.value.trim();
        const planned = await phases(targetMember);
        if (planned === null) return;
        const body = { target_member: targetMember, missions: planned, ...chosen };
        started = await api("/v1/crises", { method: "POST", body, signal: stop.signal });
      }
      context.go(`#/crises/${encodeURIComponent(started.workflow_id)}`, `Started crisis ${started.crisis_id}.`);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401) context.fail(err);
      else if (!fail(placed(err, book))) formError.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  }

  async function loadPlaybooks() {
    try {
      playbooks = await api("/v1/playbooks", { signal: stop.signal });
    } catch (err) {
      if (err.name === "AbortError") return;
      playbook.disabled = true;
      playbookPart.querySelector(".help").textContent = `The playbooks cannot be listed: ${err.message}`;
      return;
    }
    playbook.replaceChildren(
      h("option", { value: "", text: playbooks.length ? "Choose a playbook" : "none" }),
      ...playbooks.map((book) => h("option", { value: book.name, text: book.name })),
    );
    playbook.disabled = !playbooks.length;
    showPlaybook();
  }

  loadPlaybooks();
  const element = h(
    "section",
    { class: "view" },
    h("h1", { tabindex: "-1", text: "Start a crisis" }),
    h("p", { class: "lead", text: "The crisis starts at once; its page then follows it live." }),
    form,
  );
  return { name: "start", element, leave: () => stop.abort() };
}
