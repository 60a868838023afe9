// What a phase's language-model agent waits on while its phase awaits approval: a call of a
// gated tool (the tool and its arguments) or an extend-budget gate (what was spent against which
// budget); and the ways to approve it besides a plain Approve: the call with edited arguments,
// the budget extended by an amount.

import { facts, h, uid } from "./dom.js";
import { jsonBox } from "./json.js";

/** What `phase` waits on now, when its agent does: `{kind: "tool", call}` or
 * `{kind: "budget", budget}`; null for a phase's own gate (or a phase that waits on nothing). */
export function agentStep(phase) {
  if (phase?.status !== "awaiting_approval") return null;
  if (phase.pending_tool_call) return { kind: "tool", call: phase.pending_tool_call };
  if (phase.pending_budget) return { kind: "budget", budget: phase.pending_budget };
  return null;
}

/** Names the gate `phase` waits at, so that a decision form is made anew for each: the phase's
 * own gate, each tool call of its agent, each extend-budget gate. */
export function gateKey(phase) {
  const step = agentStep(phase);
  if (step?.kind === "tool") return `${phase.phase_id}#call:${step.call.call_id}`;
  if (step?.kind === "budget") {
    const { scope, spent } = step.budget;
    return `${phase.phase_id}#budget:${scope}:${spent.model_calls}:${spent.total_tokens}`;
  }
  return phase.phase_id;
}

/** Whether what `phase` waits at is known well enough to decide on it: a step of its agent that
 * the crisis has told, or the phase's own gate (a phase without one, or approved at it already,
 * waits on a step not told yet). */
export function gateKnown(phase) {
  return agentStep(phase) !== null || (phase.requires_approval !== false && !phase.approved_by);
}

/** The decisions on the gate `phase` waits at now (all of them on the phase's own gate). */
export function gateDecisions(phase) {
  const decisions = phase.decisions ?? [];
  const step = agentStep(phase);
  if (step?.kind === "tool") return decisions.filter((decision) => decision.tool_call_id === step.call.call_id);
  if (step?.kind === "budget") {
    // While a budget gate waits, the decisions taken are its approvals (a rejection ends it):
    // they are the latest ones, as many as it counts.
    const count = phase.approvals ?? 0;
    return count ? decisions.slice(-count).filter((decision) => decision.tool === "extend-budget") : [];
  }
  return decisions.filter((decision) => !decision.tool);
}

/** Tokens spent, in words: "54 tokens (40 prompt, 14 completion) in 2 model calls". */
export function tokensSpent(usage) {
  const calls = `${usage.model_calls} model call${usage.model_calls === 1 ? "" : "s"}`;
  const split = `${usage.prompt_tokens} prompt, ${usage.completion_tokens} completion`;
  return `${usage.total_tokens} tokens (${split}) in ${calls}`;
}

/** How much an extend-budget approval adds: "100 more tokens", or "as much again". */
export function extension({ extend_tokens: tokens, extend_cost: cost }) {
  const parts = [
    tokens !== null && tokens !== undefined ? `${tokens} more tokens` : null,
    cost !== null && cost !== undefined ? `${cost} more cost` : null,
  ].filter(Boolean);
  return parts.length ? parts.join(" and ") : "as much again";
}

/** Whose budget it is, in words. */
function whose(scope) {
  return scope === "crisis" ? "the crisis's budget (all its agents together)" : "its phase's budget";
}

/** What the agent waits on, for the approver to judge: the tool and its arguments, or what was
 * spent against which budget. `key` and `expanded` keep the arguments' box open across redraws. */
export function agentWaits(step, { key = null, expanded = null } = {}) {
  if (!step) return null;
  if (step.kind === "tool") {
    const { tool, arguments: args } = step.call;
    return h(
      "div",
      { class: "agent-step" },
      h("p", { class: "step-head" }, "Agent wants to call ", h("code", { text: tool })),
      jsonBox(args, { label: "Arguments", what: "arguments", key, expanded }),
    );
  }
  const { scope, spent, token_budget: tokens, cost_budget: cost } = step.budget;
  return h(
    "div",
    { class: "agent-step" },
    h("p", { class: "step-head", text: `Agent reached ${whose(scope)} and asks for more before its next model call` }),
    facts([
      ["Spent", tokensSpent(spent)],
      ["Cost spent", spent.cost ?? null],
      ["Token budget", tokens !== null && tokens !== undefined ? `${tokens} tokens` : null],
      ["Cost budget", cost ?? null],
      ["Budget of", scope === "crisis" ? "the crisis" : "the phase"],
    ]),
  );
}

/** A field of the form: its label, its control, the paragraph where its errors go. */
function field(text, control, name, { wide = false } = {}) {
  const error = h("p", { id: `${control.id}-error`, class: "field-error", "data-field": name });
  control.setAttribute("aria-describedby", error.id);
  const label = h("label", { for: control.id, text });
  return h("div", { class: wide ? "field wide" : "field" }, label, control, error);
}

/**
 * What a decision form offers besides Approve and Reject for `step`: a button that shows a panel
 * (the call's arguments to edit, or an amount to add to the budget) and the panel, whose button
 * approves with what it holds; null when there is nothing to offer. `approve(body)` sends the
 * approval; `refuse(field, message)` shows why what the panel holds cannot be sent (nothing is
 * sent then).
 */
export function stepControls(step, { approve, refuse }) {
  const budgets = step.kind === "budget" ? [step.budget.token_budget, step.budget.cost_budget] : [];
  if (step.kind === "budget" && budgets.every((budget) => budget === null || budget === undefined)) return null;
  const panelId = uid("more");
  const toggle = h("button", {
    type: "button",
    class: "more",
    "aria-expanded": "false",
    "aria-controls": panelId,
    text: step.kind === "tool" ? "Edit arguments" : "Choose an amount",
  });
  let inputs;
  let submit;
  if (step.kind === "tool") {
    const editor = h("textarea", { id: uid("arguments"), spellcheck: "false", autocomplete: "off" });
    editor.value = JSON.stringify(step.call.arguments, null, 2);
    editor.rows = Math.min(12, editor.value.split("\n").length + 1);
    inputs = [field("Arguments to run the call with (JSON)", editor, "body.arguments", { wide: true })];
    submit = h("button", {
      type: "button",
      class: "approve",
      text: "Approve with edited arguments",
      onclick: () => {
        let edited;
        try {
          edited = JSON.parse(editor.value);
        } catch (err) {
          refuse("body.arguments", `The arguments are not valid JSON (${err.message}): nothing was sent.`);
          return;
        }
        if (edited === null || typeof edited !== "object" || Array.isArray(edited)) {
          refuse("body.arguments", 'The arguments must be a JSON object ({"name": value, …}): nothing was sent.');
          return;
        }
        approve({ arguments: edited });
      },
    });
  } else {
    const { token_budget: tokenBudget, cost_budget: costBudget } = step.budget;
    const tokens = h("input", { id: uid("tokens"), type: "number", min: "1", step: "1", inputmode: "numeric" });
    const cost = h("input", { id: uid("cost"), type: "number", min: "0", step: "any", inputmode: "decimal" });
    // As much again, to start from; a budget the crisis does not have is not offered.
    if (tokenBudget !== null && tokenBudget !== undefined) tokens.value = String(tokenBudget);
    if (costBudget !== null && costBudget !== undefined) cost.value = String(costBudget);
    const offered = [
      tokenBudget !== null && tokenBudget !== undefined ? ["tokens", tokens] : null,
      costBudget !== null && costBudget !== undefined ? ["cost", cost] : null,
    ].filter(Boolean);
    inputs = offered.map(([name, input]) =>
      field(name === "tokens" ? "Tokens to add" : "Cost to add", input, `body.extend_${name}`),
    );
    submit = h("button", {
      type: "button",
      class: "approve",
      text: "Approve with this amount",
      onclick: () => {
        const body = {};
        for (const [name, input] of offered) {
          const text = input.value.trim();
          const bad = input.validity.badInput;
          if (!text && !bad) continue;
          const value = Number(text);
          if (name === "tokens" && (bad || !/^\d+$/.test(text) || value < 1)) {
            refuse("body.extend_tokens", "Tokens to add must be a whole number, at least 1: nothing was sent.");
            return;
          }
          if (name === "cost" && (bad || !Number.isFinite(value) || value <= 0)) {
            refuse("body.extend_cost", "Cost to add must be a number above 0: nothing was sent.");
            return;
          }
          body[`extend_${name}`] = value;
        }
        if (!Object.keys(body).length) {
          const [name] = offered[0];
          refuse(`body.extend_${name}`, "Give an amount to add, or approve as much again: nothing was sent.");
          return;
        }
        approve(body);
      },
    });
  }
  const panel = h("div", { id: panelId, class: "decide-more", hidden: true }, inputs, submit);
  toggle.addEventListener("click", () => {
    const open = panel.hidden;
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) panel.querySelector("textarea, input")?.focus();
  });
  return { toggle, panel, buttons: [toggle, submit] };
}

/** What the form says of its choices, for `step` (null for a phase's own gate). */
export function stepHelp(step) {
  if (step?.kind === "tool") {
    return (
      "Approve runs the call with the model's arguments; a rejection's reason is told to the agent, " +
      "which goes on without the call."
    );
  }
  if (step?.kind === "budget") {
    const { scope, token_budget: tokens, cost_budget: cost } = step.budget;
    const again = [
      tokens !== null && tokens !== undefined ? `${tokens} tokens` : null,
      cost !== null && cost !== undefined ? `${cost} of cost` : null,
    ].filter(Boolean);
    const added = again.join(" and ") || "as much again";
    return `Approve as much again adds ${added} to ${whose(scope)}; a rejection fails the phase.`;
  }
  return null;
}
