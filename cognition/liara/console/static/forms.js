// A 422's errors shown next to the fields they name, as the API names them.

import { h } from "./dom.js";

/**
 * Each `[data-field]` paragraph of `form` takes the errors of its field and of what lies inside
 * it ("body.missions" takes "body.missions.0.priority"); `[data-field="*"]` takes the rest. The
 * control the paragraph describes (aria-describedby) is marked invalid.
 */
export function fieldErrors(form) {
  const slots = () => [...form.querySelectorAll("[data-field]")];
  const control = (slot) => form.querySelector(`[aria-describedby~="${slot.id}"]`);

  function clear() {
    for (const slot of slots()) {
      slot.replaceChildren();
      control(slot)?.removeAttribute("aria-invalid");
    }
  }

  /** Shows `error`'s field errors; false (nothing shown) unless each has a place. */
  function show(error, { focus = false } = {}) {
    clear();
    const problems = error.fieldErrors ?? [];
    const all = slots();
    const placed = problems.map(({ field, message }) => {
      const own = all.find((slot) => field === slot.dataset.field || field.startsWith(`${slot.dataset.field}.`));
      return {
        field,
        message,
        slot: own ?? all.find((slot) => slot.dataset.field === "*"),
        inside: own && field !== own.dataset.field,
      };
    });
    if (!problems.length || placed.some(({ slot }) => !slot)) return false;
    for (const { field, message, slot, inside } of placed) {
      slot.append(h("span", { text: inside ? `${field.replace(/^body\./, "")}: ${message}` : message }));
      control(slot)?.setAttribute("aria-invalid", "true");
    }
    if (focus) form.querySelector("[aria-invalid=true]")?.focus();
    return true;
  }

  return { show, clear };
}
