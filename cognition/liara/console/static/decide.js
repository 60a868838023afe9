// Approving or rejecting a phase that awaits approval, and how far its quorum is.

import { api } from "./api.js";
import { h, uid, when } from "./dom.js";
import { fieldErrors } from "./forms.js";

/** "1 of 2 approvals" and each decision taken: who, which way, when, why. */
export function quorum(approvals, required, decisions) {
  return h(
    "div",
    { class: "quorum" },
    h("p", { text: `${approvals} of ${required} approvals` }),
    decisions.length
      ? h(
          "ul",
          { class: "decisions" },
          decisions.map((decision) =>
            h(
              "li",
              {},
              `${decision.approved ? "Approved" : "Rejected"} by ${decision.decided_by} at `,
              when(decision.decided_at),
              decision.reason ? ` (${decision.reason})` : "",
            ),
          ),
        )
      : null,
  );
}

/** Whether `name` is among the approvers in `decisions`. */
export function approvedBy(name, decisions) {
  return (decisions ?? []).some((decision) => decision.approved && decision.decided_by === name);
}

/** Said instead of Approve and Reject to someone who has approved the phase already. */
export function approvedAlready(approvals, required) {
  return h("p", { class: "decided", text: `You approved this phase; ${approvals} of ${required} approvals.` });
}

/** Approve and Reject (with a reason) for `phaseId` of `workflowId`; `decided()` after either. */
export function decisionForm(context, workflowId, phaseId, decided) {
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

  async function decide(approve) {
    buttons.forEach((button) => {
      button.disabled = true;
    });
    try {
      const body = !approve && reason.value.trim() ? { reason: reason.value.trim() } : undefined;
      const taken = await api(`${base}/${approve ? "approve" : "reject"}`, { method: "POST", body });
      context.recover();
      context.say(
        approve
          ? `${taken.decided_by} approved ${phaseId}: ${taken.approvals} of ${taken.approvals_required} approvals.`
          : `${taken.decided_by} rejected ${phaseId}${taken.reason ? `: ${taken.reason}` : ""}.`,
      );
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

  buttons.push(
    h("button", { type: "button", class: "approve", text: "Approve", onclick: () => decide(true) }),
    h("button", { type: "button", class: "reject", text: "Reject", onclick: () => decide(false) }),
  );
  const group = h(
    "div",
    { class: "decide", role: "group", "aria-label": `Decide on ${phaseId}` },
    buttons[0],
    h(
      "div",
      { class: "field" },
      h("label", { for: reasonId, text: "Reason for a rejection" }),
      reason,
      h("p", { id: `${reasonId}-error`, class: "field-error", "data-field": "body.reason" }),
    ),
    buttons[1],
  );
  const errors = fieldErrors(group);
  return group;
}
