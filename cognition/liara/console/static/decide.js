// Approving or rejecting a phase that awaits approval (or a step of its agent: a gated tool call,
// an extend-budget gate), and how far its quorum is.

import { api } from "./api.js";
import { h, uid, when } from "./dom.js";
import { fieldErrors } from "./forms.js";
import { jsonBox } from "./json.js";
import { extension, stepControls, stepHelp } from "./steps.js";

/** One decision: who, which way, when, on what (a tool call, with the arguments an approver
 * gave; more budget, and how much), why. */
function decisionItem(decision, key, expanded) {
  const extended = decision.tool === "extend-budget";
  const edited = decision.arguments !== null && decision.arguments !== undefined;
  let what = "";
  if (extended) what = decision.approved ? `: more budget, ${extension(decision)}` : ": more budget";
  else if (decision.tool) what = `: the call of ${decision.tool}${edited ? ", with edited arguments" : ""}`;
  return h(
    "li",
    {},
    `${decision.approved ? "Approved" : "Rejected"} by ${decision.decided_by} at `,
    when(decision.decided_at),
    what,
    decision.reason ? ` (${decision.reason})` : "",
    edited ? jsonBox(decision.arguments, { label: "Edited arguments", what: "arguments", key, expanded }) : null,
  );
}

/** "1 of 2 approvals" (unless `counted` is false: decisions on an agent's steps only) and each
 * decision taken. `key` and `expanded` keep the boxes of edited arguments open across redraws. */
export function quorum(approvals, required, decisions, { counted = true, key = null, expanded = null } = {}) {
  return h(
    "div",
    { class: "quorum" },
    h("p", { text: counted ? `${approvals} of ${required} approvals` : "Decisions" }),
    decisions.length
      ? h(
          "ul",
          { class: "decisions" },
          decisions.map((decision, index) => decisionItem(decision, key === null ? null : `${key}@${index}`, expanded)),
        )
      : null,
  );
}

/** Whether `name` is among the approvers in `decisions`. */
export function approvedBy(name, decisions) {
  return (decisions ?? []).some((decision) => decision.approved && decision.decided_by === name);
}

/** Said instead of Approve and Reject to someone who has approved the phase (or the step of its
 * agent it waits on) already. */
export function approvedAlready(approvals, required, step = null) {
  const what = { tool: "this call", budget: "more budget" }[step?.kind] ?? "this phase";
  return h("p", { class: "decided", text: `You approved ${what}; ${approvals} of ${required} approvals.` });
}

/** Approve and Reject (with a reason) for `phaseId` of `workflowId`; `decided()` after either.
 * When its agent waits on `step` (see steps.js), they decide that step, and the form offers to
 * approve a tool call with edited arguments, or a budget extended by an amount. */
export function decisionForm(context, workflowId, phaseId, decided, step = null) {
  const reasonId = uid("reason");
  // No length limit here: a reason the API finds too long is refused next to the field.
  const reason = h("input", {
    id: reasonId,
    type: "text",
    autocomplete: "off",
    "aria-describedby": `${reasonId}-error`,
  });
  const buttons = [];
  const base = `/v1/crises/${encodeURIComponent(workflowId)}/phases/${encodeURIComponent(phaseId)}`;
  const what = {
    tool: `the call of ${step?.call?.tool} by ${phaseId}`,
    budget: `more budget for ${phaseId}`,
  }[step?.kind] ?? phaseId;

  /** What the page says of a decision taken. */
  function said(taken, approve) {
    if (!approve) return `${taken.decided_by} rejected ${what}${taken.reason ? `: ${taken.reason}` : ""}.`;
    const count = `${taken.approvals} of ${taken.approvals_required} approvals`;
    if (step?.kind === "tool") {
      const edited = taken.arguments !== null && taken.arguments !== undefined ? " with edited arguments" : "";
      return `${taken.decided_by} approved ${what}${edited}: ${count}.`;
    }
    if (step?.kind === "budget") return `${taken.decided_by} approved ${what} (${extension(taken)}): ${count}.`;
    return `${taken.decided_by} approved ${what}: ${count}.`;
  }

  /** Approves (with `given`: edited arguments or an amount) or rejects (with the reason). */
  async function decide(approve, given = undefined) {
    buttons.forEach((button) => {
      button.disabled = true;
    });
    try {
      const body = approve ? given : reason.value.trim() ? { reason: reason.value.trim() } : undefined;
      const taken = await api(`${base}/${approve ? "approve" : "reject"}`, { method: "POST", body });
      context.recover();
      context.say(said(taken, approve));
      errors.clear();
      await decided();
    } catch (err) {
      if (!errors.show(err, { focus: true })) context.fail(err);
    } finally {
      buttons.forEach((button) => {
        button.disabled = false;
      });
    }
  }

  const approveText = step?.kind === "budget" ? "Approve as much again" : "Approve";
  buttons.push(
    h("button", { type: "button", class: "approve", text: approveText, onclick: () => decide(true) }),
    h("button", { type: "button", class: "reject", text: "Reject", onclick: () => decide(false) }),
  );
  // What is in the panel and cannot be sent is said at its field, as the API's refusals are.
  const more = step
    ? stepControls(step, {
        approve: (given) => decide(true, given),
        refuse: (field, message) => errors.show({ fieldErrors: [{ field, message }] }, { focus: true }),
      })
    : null;
  if (more) buttons.push(...more.buttons);
  const help = stepHelp(step);
  const helpId = help ? uid("help") : null;
  const group = h(
    "div",
    { class: "decide", role: "group", "aria-label": `Decide on ${what}`, "aria-describedby": helpId },
    help ? h("p", { id: helpId, class: "help", text: help }) : null,
    buttons[0],
    more?.toggle,
    h(
      "div",
      { class: "field" },
      h("label", { for: reasonId, text: "Reason for a rejection" }),
      reason,
      h("p", { id: `${reasonId}-error`, class: "field-error", "data-field": "body.reason" }),
    ),
    buttons[1],
    more?.panel,
  );
  const errors = fieldErrors(group);
  return group;
}
