// The inbox: every phase awaiting approval across crises (its own gate, or a step of its agent:
// a gated tool call, an extend-budget gate), polled every few seconds.

import { api } from "./api.js";
import { facts, h, keyed, when } from "./dom.js";
import { approvedAlready, approvedBy, decisionForm, quorum } from "./decide.js";
import { phaseParams } from "./json.js";
import { poll } from "./poll.js";
import { agentStep, agentWaits, gateDecisions, gateKey } from "./steps.js";

const POLL_MS = 3000;

export function approvalsView(context) {
  context.title("Approvals");
  const stop = new AbortController();
  const list = h("ul", { class: "inbox" });
  const empty = h("p", { class: "muted", hidden: true, text: "No phase awaits approval." });
  const more = h("p", {
    class: "muted",
    hidden: true,
    text: "More crises await approval than are shown: decide on these first.",
  });
  // Kept across refreshes (by gate: a new tool call gets a form of its own), so a reason or
  // arguments being typed are not lost when the item is redrawn.
  const forms = new Map();
  const expanded = new Set(); // the JSON boxes opened whole, kept open across refreshes

  function item(pending) {
    const { phase, workflow_id: workflowId } = pending;
    const key = `${workflowId}/${phase.phase_id}`;
    const step = agentStep(phase);
    const gate = `${workflowId}/${gateKey(phase)}`;
    // Someone who has approved is not asked again: the phase (or its agent's step) waits for the
    // rest of its quorum.
    const voted = approvedBy(context.me.name, gateDecisions(phase));
    if (voted) forms.delete(gate);
    else if (context.may("decide") && !forms.has(gate))
      forms.set(gate, decisionForm(context, workflowId, phase.phase_id, refresh, step));
    return h(
      "li",
      { class: "card approval" },
      h(
        "h2",
        {},
        `${phase.phase_id} `,
        h("span", { class: "muted", text: "of " }),
        h("a", { href: `#/crises/${encodeURIComponent(workflowId)}`, text: workflowId }),
      ),
      facts([
        ["Target", pending.target],
        ["Agent", phase.agent_id],
        ["Action", phase.action],
        ["Started by", pending.initiated_by],
        ["Crisis started", when(pending.started_at)],
      ]),
      agentWaits(step, { key: `step:${key}`, expanded }),
      phaseParams(phase, { key: `params:${key}`, expanded }),
      quorum(pending.approvals, phase.approvals_required, phase.decisions, { key: `decisions:${key}`, expanded }),
      context.may("decide") && voted
        ? approvedAlready(pending.approvals, phase.approvals_required, step)
        : (forms.get(gate) ?? null),
    );
  }

  async function refresh() {
    try {
      const inbox = await api("/v1/approvals", { signal: stop.signal });
      context.recover("approvals");
      keyed(list, inbox.approvals, (pending) => `${pending.workflow_id}/${pending.phase.phase_id}`, item);
      const shown = new Set(inbox.approvals.map((pending) => `${pending.workflow_id}/${pending.phase.phase_id}`));
      const gates = new Set(inbox.approvals.map((pending) => `${pending.workflow_id}/${gateKey(pending.phase)}`));
      for (const key of forms.keys()) if (!gates.has(key)) forms.delete(key);
      for (const key of expanded) {
        if (!shown.has(key.replace(/^[a-z]+:/, "").replace(/@\d+$/, ""))) expanded.delete(key);
      }
      empty.hidden = inbox.approvals.length > 0;
      more.hidden = !inbox.more;
    } catch (err) {
      context.fail(err, "approvals");
    }
  }

  poll(refresh, POLL_MS, stop.signal);
  const element = h(
    "section",
    { class: "view" },
    h("h1", { tabindex: "-1", text: "Approvals" }),
    h("p", { class: "lead", text: "Phases awaiting a decision, newest crisis first." }),
    list,
    empty,
    more,
  );
  return { name: "approvals", element, leave: () => stop.abort() };
}
