// A crisis's status as the console shows it, in the list and on its page alike: both read the
// crisis's `CrisisStatus` search attribute (`crisis_status`) and its workflow's status.

/** The crisis's own status while its workflow runs or has completed, the workflow's otherwise
 * (a cancelled or terminated workflow could not update its crisis status). */
export function crisisStatus({ status, crisis_status: crisis }) {
  return status === "running" || status === "completed" ? (crisis ?? status) : status;
}

/** What a status waits on, from a crisis's phases: "contain (1 of 2)" for each phase awaiting
 * approval; null when none does. */
export function awaited(phases) {
  const waiting = (phases ?? []).filter((phase) => phase.status === "awaiting_approval");
  if (!waiting.length) return null;
  return waiting
    .map((phase) => `${phase.phase_id} (${phase.approvals ?? 0} of ${phase.approvals_required ?? 1})`)
    .join(", ");
}
