// Phases that depend on each other, in layers: a phase sits one layer after the last of those
// it depends on, and lines join each phase to what it depends on.

const SVG = "http://www.w3.org/2000/svg";

/** The phases in layers (plan order kept within each), by `depends_on`. */
export function layers(phases) {
  const byId = new Map(phases.map((phase) => [phase.phase_id, phase]));
  const depth = new Map();
  function depthOf(phase, seen = new Set()) {
    if (depth.has(phase.phase_id)) return depth.get(phase.phase_id);
    seen.add(phase.phase_id);
    const before = (phase.depends_on ?? [])
      .filter((id) => byId.has(id) && !seen.has(id))
      .map((id) => depthOf(byId.get(id), seen));
    const own = before.length ? Math.max(...before) + 1 : 0;
    depth.set(phase.phase_id, own);
    return own;
  }
  const grouped = [];
  for (const phase of phases) (grouped[depthOf(phase)] ??= []).push(phase);
  return grouped.filter(Boolean);
}

/** Draws into `svg` a line from each card to the cards it depends on, within `board` (the svg's
 * own box is the origin: it scrolls with the cards, and lines past it are drawn all the same). */
export function drawEdges(board, svg) {
  const area = svg.getBoundingClientRect();
  const paths = [];
  const card = (id) => board.querySelector(`[data-phase="${CSS.escape(id)}"]`);
  for (const target of board.querySelectorAll("[data-depends-on]")) {
    const to = target.getBoundingClientRect();
    for (const id of target.dataset.dependsOn.split(" ")) {
      const source = card(id);
      if (!source) continue;
      const from = source.getBoundingClientRect();
      const x1 = from.right - area.left;
      const y1 = from.top + from.height / 2 - area.top;
      const x2 = to.left - area.left;
      const y2 = to.top + to.height / 2 - area.top;
      const bend = Math.max((x2 - x1) / 2, 12);
      const path = document.createElementNS(SVG, "path");
      path.setAttribute("d", `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`);
      paths.push(path);
    }
  }
  svg.replaceChildren(...paths);
}
