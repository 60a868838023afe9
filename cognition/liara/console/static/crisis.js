// One crisis: its phases as a timeline (or, once phases depend on each other, as their graph),
// compensations and cancel requests, kept current from its event stream without a reload; the
// text a language-model agent writes, live, on its running phase's card, and once the phase has
// ended what its model calls spent.

import { api } from "./api.js";
import { approvedAlready, approvedBy, decisionForm, quorum } from "./decide.js";
import { badge, duration, facts, fill, h, keyed, uid, when, words } from "./dom.js";
import { follow } from "./events.js";
import { drawEdges, layers } from "./graph.js";
import { jsonBox, keptInRecord, phaseParams } from "./json.js";
import { awaited, crisisStatus } from "./status.js";
import { agentStep, agentWaits, gateDecisions, gateKey, gateKnown } from "./steps.js";

const SHOWN_EVENTS = 8;

/** What an agent phase's model calls spent, in words (null for a phase without an agent). */
function modelUsage(usage) {
  if (!usage) return null;
  const calls = `${usage.model_calls} model call${usage.model_calls === 1 ? "" : "s"}`;
  const split = `${usage.prompt_tokens} prompt, ${usage.completion_tokens} completion`;
  return `${usage.total_tokens} tokens (${split}) in ${calls}`;
}

function describe(event) {
  const data = event.data;
  switch (event.event) {
    case "phase":
      return `${data.phase_id} ${words(data.status)}${data.error ? `: ${data.error}` : ""}`;
    case "compensation":
      return `Compensation of ${data.phase_id} ${words(data.status)}`;
    case "approval_required": {
      const what = data.tool ? ` of a call of ${data.tool}` : ""; // a tool call of its agent
      return `${data.phase_id} awaits approval${what} (${data.approvals} of ${data.approvals_required})`;
    }
    case "decision":
      return `${data.decided_by} ${data.approved ? "approved" : "rejected"} ${data.phase_id}`;
    case "cancel_requested":
      return `Cancel requested while ${words(data.status)}`;
    case "finished":
      return `Crisis finished: ${words(data.result?.status ?? data.status)}`;
    default:
      return words(event.event);
  }
}

/** A section of the page named by its heading (hidden until it has something to show). */
function part(title, content) {
  const id = uid("part");
  return h("section", { hidden: true, "aria-labelledby": id }, h("h2", { id, text: title }), content);
}

export function crisisView(context, workflowId) {
  context.title(workflowId);
  const stop = new AbortController();
  const state = {
    report: null,
    phases: [], // in plan order
    compensations: [],
    times: new Map(), // "phase:<id>" or "compensation:<id>" → {start, end} from the events
    quorums: new Map(), // phase id → {approvals, approvals_required} from the events
    recent: [],
    finished: null, // the `finished` event's data
    // "phase:<id>" or "compensation:<id>" → its agent's text, model call (turn) → text, from the
    // `agent_output` events (a restart drops that call's text so far)
    live: new Map(),
  };
  const liveBoxes = new Map(); // the live text boxes, kept across redraws (as they scroll)
  const forms = new Map(); // decision forms kept across redraws (a reason being typed survives)
  const expanded = new Set(); // the JSON boxes opened whole, kept open across redraws

  const heading = h("h1", { tabindex: "-1", text: `Crisis ${workflowId}` });
  const summary = h("div", { class: "summary" });
  const actions = h("div", { class: "actions" });
  const board = h("ol", { class: "timeline", "aria-label": "Phases in plan order" });
  const edges = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  edges.setAttribute("class", "edges");
  edges.setAttribute("aria-hidden", "true");
  // A graph wider than the page scrolls sideways within its frame: the cue says so, and shades
  // at the frame's edges show on which side more phases are.
  const scroller = h("div", { class: "scroller" }, edges, board);
  const cue = h(
    "p",
    { id: uid("cue"), class: "scroll-cue", hidden: true },
    h("span", { "aria-hidden": "true", text: "⇆ " }),
    "The graph is wider than the page: scroll it sideways (or focus it and use the arrow keys) to see every phase.",
  );
  const boardArea = h("div", { class: "board" }, cue, h("div", { class: "frame" }, scroller));
  const compensations = h("ol", { class: "timeline" });
  const compensationsPart = part("Compensations", compensations);
  const cancels = h("ul", { class: "plain" });
  const cancelsPart = part("Cancel requests", cancels);
  const recent = h("ol", { class: "events plain", "aria-live": "polite" });
  const stream = h("p", { class: "muted" });

  const result = () => state.report?.result ?? state.finished?.result ?? null;
  const running = () => state.report?.status === "running";

  /** What one card shows: the entry and what the events and the role add to it. */
  function model(entry, kind) {
    const awaiting = kind === "phase" && entry.status === "awaiting_approval";
    const mayDecide = awaiting && running() && context.may("decide");
    // Someone who has approved is not asked again: the phase (or its agent's step) waits for the
    // rest of its quorum.
    const voted = mayDecide && approvedBy(context.me.name, gateDecisions(entry));
    // An agent's text shows while it writes: on the phase's card while the phase runs (or
    // awaits a decision on a tool call it asked for), and while its compensation runs
    // (compensations get a card once they have ended).
    const streaming = (key) => state.live.has(key) && running();
    const underWay = entry.status === "running" || entry.status === "awaiting_approval";
    const undoing = kind === "phase" && !state.compensations.some((undone) => undone.phase_id === entry.phase_id);
    const live = [
      streaming(`phase:${entry.phase_id}`) && kind === "phase" && underWay ? `phase:${entry.phase_id}` : null,
      streaming(`compensation:${entry.phase_id}`) && undoing ? `compensation:${entry.phase_id}` : null,
    ].filter(Boolean);
    return {
      entry,
      kind,
      live,
      time: state.times.get(`${kind}:${entry.phase_id}`) ?? null,
      quorum: kind === "phase" ? (state.quorums.get(entry.phase_id) ?? null) : null,
      decide: mayDecide && !voted && gateKnown(entry),
      voted,
    };
  }

  function timing({ entry, time }) {
    if (time?.start && time.end) return duration(new Date(time.end) - new Date(time.start));
    if (time?.start && entry.status === "running") return h("span", {}, "running since ", when(time.start));
    return null;
  }

  function card(shown) {
    const { entry, quorum: told } = shown;
    const step = shown.kind === "phase" ? agentStep(entry) : null;
    const gate = gateKey(entry);
    if (shown.decide && !forms.has(gate)) {
      forms.set(gate, decisionForm(context, workflowId, entry.phase_id, refresh, step));
    }
    const decisions = entry.decisions ?? [];
    // The events' count, but for a phase whose agent's steps were decided: each step counts its
    // own approvals, and once it is decided the phase's count (the report's) is shown again.
    const stepped = entry.status !== "awaiting_approval" && decisions.some((decision) => decision.tool);
    const asked = told && !(stepped && entry.approvals !== undefined) ? told : null;
    const approvals = asked?.approvals ?? entry.approvals;
    const required = asked?.approvals_required ?? entry.approvals_required;
    // A phase without a gate of its own that waits on nothing has decisions on its agent's steps only.
    const counted = entry.requires_approval !== false || entry.status === "awaiting_approval";
    const box = (field) => `${shown.kind}:${entry.phase_id}:${field}`;
    return h(
      "li",
      {
        class: `card phase status-${entry.status}`,
        "data-phase": entry.phase_id,
        "data-depends-on": entry.depends_on?.length ? entry.depends_on.join(" ") : null,
      },
      h("h3", {}, `${entry.phase_id} `, badge(entry.status)),
      facts([
        ["Agent", entry.agent_id],
        ["Action", entry.action],
        ["Attempts", entry.attempts ?? null],
        ["Reused from", entry.reused_from ?? null],
        ["Duration", timing(shown)],
        ["After", entry.depends_on?.length ? entry.depends_on.join(", ") : null],
        ["Approved by", entry.approved_by],
        ["Model usage", entry.status === "running" ? null : modelUsage(entry.usage)],
      ]),
      agentWaits(step, { key: box(`step:${gate}`), expanded }),
      entry.requires_approval || told || decisions.length
        ? quorum(approvals, required, decisions, { counted, key: box("decisions"), expanded })
        : null,
      entry.error ? h("p", { class: "error", text: `Error: ${entry.error}` }) : null,
      phaseParams(entry, { key: box("params"), expanded }),
      keptInRecord("Output", entry.output_ref),
      jsonBox(entry.output, { label: "Output", key: box("output"), expanded }),
      shown.live.map(liveBox),
      shown.decide ? forms.get(gate) : null,
      shown.voted ? approvedAlready(approvals, required, step) : null,
    );
  }

  function drawPhases() {
    const graph = state.phases.some((phase) => phase.depends_on?.length);
    boardArea.classList.toggle("graph", graph);
    if (!graph) {
      board.setAttribute("aria-label", "Phases in plan order");
      keyed(
        board,
        state.phases.map((phase) => model(phase, "phase")),
        ({ entry }) => entry.phase_id,
        card,
      );
      edges.replaceChildren();
      requestAnimationFrame(redraw);
      return;
    }
    board.setAttribute("aria-label", "Phases in layers: each runs once those it comes after have completed");
    const grouped = layers(state.phases);
    const ids = (layer) => layer.map((phase) => phase.phase_id).join(" ");
    keyed(
      board,
      grouped.map(ids),
      (key) => key,
      () => h("li", { class: "step" }, h("ol", { class: "layer" })),
    );
    grouped.forEach((layer, index) => {
      const column = board.children[index].firstElementChild;
      keyed(
        column,
        layer.map((phase) => model(phase, "phase")),
        ({ entry }) => entry.phase_id,
        card,
      );
    });
    requestAnimationFrame(redraw);
  }

  /** The crisis's status as the list shows it (see status.js), with what it waits on: the
   * phases awaiting approval and their quorums, or a task queue no worker polls. */
  function statusNow(report, ended) {
    if (!report.status) return null;
    const status = crisisStatus({ status: report.status, crisis_status: report.crisis_status ?? ended?.status });
    const phases = state.phases.map((phase) => ({ ...phase, ...state.quorums.get(phase.phase_id) }));
    const waitingOn = status === "awaiting_approval" ? awaited(phases) : null;
    const unpolled = running() && report.workers_polling === 0;
    return h(
      "span",
      { class: "status-now" },
      badge(status, waitingOn ? `awaiting approval of ${waitingOn}` : words(status)),
      unpolled ? h("span", { class: "warning", text: ` no worker polls task queue ${report.task_queue}` }) : null,
    );
  }

  /** Where the crisis record is, or why that is not known. */
  function record(report, ended) {
    if (ended) return ended.record_path ?? "not told by the worker that finished it";
    if (report.record_path) return report.record_path;
    if (report.record_error) return `not readable: ${report.record_error}`;
    if (!report.status) return null;
    return running() ? "its path is known once the crisis has ended" : "not known: the service finds no record of it";
  }

  function draw() {
    const report = state.report ?? {};
    const ended = result();
    const crisisId = ended?.crisis_id ?? report.crisis_id;
    const progress = report.summary ?? ended?.summary;
    heading.textContent = `Crisis ${crisisId ?? workflowId}`;
    const { web_ui_url: webUi, namespace } = context.settings;
    const ui = `${webUi}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
    fill(
      summary,
      facts([
        ["Status", statusNow(report, ended)],
        ["Stage", running() ? words(report.stage) : null],
        ["Target", ended?.target ?? report.target],
        ["Workflow", workflowId],
        ["Started", when(report.started_at)],
        ["Ended", when(report.closed_at)],
        ["Progress", progress ? `${progress.completed_phases} of ${progress.total_phases} phases done` : null],
        ["Record", record(report, ended)],
        [
          "Temporal",
          h("a", {
            href: ui,
            target: "_blank",
            rel: "noopener noreferrer",
            text: "Open the workflow in the Temporal Web UI",
          }),
        ],
      ]),
      report.note ? h("p", { class: "warning", text: `Waiting: ${report.note}.` }) : null,
      report.problem ? h("p", { class: "warning", text: `Problem: ${report.problem}` }) : null,
      report.error ? h("p", { class: "error", text: report.error }) : null,
    );
    fill(
      actions,
      running() && context.may("operate")
        ? h("button", { type: "button", class: "danger", text: "Cancel crisis", onclick: cancel })
        : null,
      state.report && !running() && state.phases.length && context.may("operate") ? rerunControl() : null,
    );
    drawPhases();
    keyed(
      compensations,
      state.compensations.map((entry) => model(entry, "compensation")),
      ({ entry }) => entry.phase_id,
      card,
    );
    compensationsPart.hidden = !state.compensations.length;
    const notes = report.cancel_requests ?? ended?.cancel_requests ?? [];
    cancels.replaceChildren(
      ...notes.map((note) =>
        h(
          "li",
          {},
          when(note.requested_at),
          ` while ${words(note.stage)}: ${note.obeyed ? "obeyed" : "recorded, not obeyed"}`,
          note.reason ? ` (${note.reason})` : "",
        ),
      ),
    );
    cancelsPart.hidden = !notes.length;
    recent.replaceChildren(...state.recent.map((event) => h("li", {}, when(event.data.at), ` ${describe(event)}`)));
    const open = new Set(state.phases.filter((phase) => phase.status === "awaiting_approval").map(gateKey));
    for (const key of forms.keys()) if (!open.has(key)) forms.delete(key);
  }

  async function cancel() {
    const question =
      `Cancel crisis ${workflowId}? Its running phase stops, the phases left are skipped ` +
      "and completed ones are compensated.";
    if (!window.confirm(question)) return;
    try {
      const asked = await api(`/v1/crises/${encodeURIComponent(workflowId)}/cancel`, { method: "POST" });
      context.recover();
      context.say(`Cancel of ${workflowId} requested by ${asked.cancelled_by}.`);
      await refresh();
    } catch (err) {
      context.fail(err);
    }
  }

  let rerunForm = null; // made once the crisis has ended (its phases no longer change): the choice stays
  /** A crisis that has ended, started again from a phase chosen: the phases before it keep their outputs. */
  function rerunControl() {
    if (rerunForm) return rerunForm;
    const id = uid("rerun-from");
    const phases = state.phases.map((phase) => h("option", { value: phase.phase_id, text: phase.phase_id }));
    const select = h("select", { id, name: "from_phase" }, ...phases);
    const submit = (event) => {
      event.preventDefault();
      rerun(select.value);
    };
    rerunForm = h(
      "form",
      { class: "rerun", onsubmit: submit },
      h("label", { for: id, text: "Rerun from phase " }),
      select,
      h("button", { type: "submit", text: "Rerun" }),
    );
    return rerunForm;
  }

  async function rerun(fromPhase) {
    const question =
      `Rerun crisis ${workflowId} from phase ${fromPhase}? A new crisis runs it and the phases after it; ` +
      "those before it keep their outputs and run no agent.";
    if (!window.confirm(question)) return;
    try {
      const path = `/v1/crises/${encodeURIComponent(workflowId)}/rerun`;
      const started = await api(path, { method: "POST", body: { from_phase: fromPhase } });
      const reused = started.reused.length ? started.reused.join(", ") : "none";
      const said = `Started ${started.crisis_id}, a rerun of ${workflowId} from ${fromPhase} (reused: ${reused}).`;
      context.go(`#/crises/${encodeURIComponent(started.workflow_id)}`, said);
    } catch (err) {
      context.fail(err);
    }
  }

  let refreshing = null;
  let again = false;
  /** Fetches the report (one request at a time; a call meanwhile asks for one more after it). */
  async function refresh() {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        again = false;
        try {
          const report = await api(`/v1/crises/${encodeURIComponent(workflowId)}`, { signal: stop.signal });
          state.report = report;
          // Where the crisis tells its phases (running, ended with a result, or without one
          // but with a record) they replace what the events said; otherwise the events' view stays.
          const told = report.phases ?? report.result?.phases;
          if (told) state.phases = told;
          const undone = report.compensations ?? report.result?.compensations;
          if (undone) state.compensations = undone;
          context.recover("crisis");
          draw();
        } catch (err) {
          context.fail(err, "crisis");
        }
      } while (again && !stop.signal.aborted);
    })();
    try {
      await refreshing;
    } finally {
      refreshing = null;
    }
  }

  /** The box of an agent's live text ("phase:<id>" or "compensation:<id>"), made once. */
  function liveBox(key) {
    let box = liveBoxes.get(key);
    if (!box) {
      const [kind, phaseId] = [key.slice(0, key.indexOf(":")), key.slice(key.indexOf(":") + 1)];
      const title = kind === "phase" ? "Live output" : "Live output of its compensation";
      const text = h("pre", { class: "live-text", role: "log", "aria-label": `${title} of ${phaseId}` });
      box = h("div", { class: "live", "data-live": key }, h("p", { class: "live-head", text: `${title}:` }), text);
      liveBoxes.set(key, box);
    }
    return box;
  }

  /** An `agent_output` event: its text appended to its model call's (dropped first on a restart). */
  function appendText(data) {
    const key = `${data.compensation ? "compensation" : "phase"}:${data.phase_id}`;
    const known = state.live.has(key);
    const calls = state.live.get(key) ?? new Map();
    const before = data.restart ? "" : (calls.get(data.turn) ?? "");
    const cut = data.cut ? "\n… (cut here: the phase's output holds the whole answer)" : "";
    calls.set(data.turn, before + (data.delta ?? "") + cut);
    state.live.set(key, calls);
    const text = liveBox(key).querySelector("pre");
    const following = text.scrollTop + text.clientHeight >= text.scrollHeight - 4; // kept at the bottom
    text.textContent = [...calls.keys()]
      .sort((a, b) => a - b)
      .map((turn) => calls.get(turn))
      .filter((said) => said)
      .join("\n\n");
    if (following) text.scrollTop = text.scrollHeight;
    if (!known) draw(); // its card shows the box from now on
  }

  function upsert(list, data) {
    const known = list.find((entry) => entry.phase_id === data.phase_id);
    const change = { status: data.status, ...(data.error ? { error: data.error } : {}) };
    if (known && known.status !== data.status) {
      // What its agent waited on is over (the report tells what it waits on next).
      delete known.pending_tool_call;
      delete known.pending_budget;
    }
    if (known) Object.assign(known, change);
    else list.push({ phase_id: data.phase_id, decisions: [], ...change });
  }

  function observe(event) {
    const data = event.data;
    if (event.event === "agent_output") {
      appendText(data); // text, not a change: neither in the latest events nor a reason to ask for the report
      return;
    }
    if (event.event === "phase" || event.event === "compensation") {
      upsert(event.event === "phase" ? state.phases : state.compensations, data);
      const key = `${event.event}:${data.phase_id}`;
      const time = state.times.get(key) ?? {};
      if (data.status === "running") time.start = data.at;
      else if (data.status !== "awaiting_approval" && data.status !== "pending") time.end = data.at;
      state.times.set(key, time);
    } else if (event.event === "approval_required" || event.event === "decision") {
      state.quorums.set(data.phase_id, { approvals: data.approvals, approvals_required: data.approvals_required });
      if (event.event === "approval_required")
        upsert(state.phases, { phase_id: data.phase_id, status: "awaiting_approval" });
    } else if (event.event === "finished") {
      state.finished = data;
    }
    state.recent = [event, ...state.recent].slice(0, SHOWN_EVENTS);
    draw();
    refresh();
  }

  refresh();
  follow(workflowId, {
    signal: stop.signal,
    onEvent: observe,
    onError: (error) => context.fail(error),
    onConnected: () => {
      stream.textContent = "Following the crisis's events live.";
      context.recover("stream");
    },
    onTrouble: (error, retrying) => {
      stream.textContent = retrying
        ? "The event stream is interrupted: reconnecting…"
        : "The event stream has stopped.";
      context.fail(error, "stream");
    },
  }).then(() => {
    if (state.finished) stream.textContent = "The crisis has ended: its events are all shown.";
  });
  /** Whether the graph is wider than its frame: then the cue shows, the frame's edges are
   * shaded where more phases are, and the graph can be scrolled by keyboard. */
  function overflow() {
    const wide = boardArea.classList.contains("graph") && scroller.scrollWidth > scroller.clientWidth + 1;
    const left = scroller.scrollLeft;
    cue.hidden = !wide;
    boardArea.classList.toggle("more-left", wide && left > 1);
    boardArea.classList.toggle("more-right", wide && left + scroller.clientWidth < scroller.scrollWidth - 1);
    const region = { tabindex: "0", role: "region", "aria-label": "Phases graph", "aria-describedby": cue.id };
    for (const [name, value] of Object.entries(region)) {
      if (wide) scroller.setAttribute(name, value);
      else scroller.removeAttribute(name);
    }
  }
  function redraw() {
    if (boardArea.classList.contains("graph")) drawEdges(scroller, edges);
    overflow();
  }
  const resized = new ResizeObserver(redraw);
  resized.observe(boardArea);
  resized.observe(board);
  scroller.addEventListener("scroll", overflow, { passive: true });
  boardArea.addEventListener("json-toggle", redraw); // a card grew or shrank: its lines move

  const element = h(
    "section",
    { class: "view crisis" },
    h("p", { class: "back" }, h("a", { href: "#/crises", text: "← All crises" })),
    heading,
    summary,
    actions,
    h("h2", { text: "Phases" }),
    boardArea,
    compensationsPart,
    cancelsPart,
    h("section", {}, h("h2", { text: "Latest events" }), stream, recent),
  );
  return {
    name: "crisis",
    element,
    leave: () => {
      stop.abort();
      resized.disconnect();
    },
  };
}
