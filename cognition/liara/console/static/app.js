// The console's shell: signing in, the views by URL (#/crises, #/crises/<id>, #/approvals,
// #/start), and the one place errors and notices are shown.

import { ApiError, api, session } from "./api.js";
import { approvalsView } from "./approvals.js";
import { crisesView } from "./crises.js";
import { crisisView } from "./crisis.js";
import { h, uid } from "./dom.js";
import { startView } from "./start.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const alertBox = document.getElementById("alert");
const notice = document.getElementById("notice");

let leave = null; // stops the current view's polling and streams
let alertSource = null;
let carried = ""; // the notice for the next page

/** What a view needs: who signed in, the service's settings, and where to say things. */
const context = {
  me: null,
  settings: null,
  may(permission) {
    return this.me.permissions.includes(permission);
  },
  /** Shows `error` as one sentence; `source` lets a later success clear it. */
  fail(error, source = null) {
    if (error?.name === "AbortError") return;
    if (error instanceof ApiError && error.status === 401) {
      signedOut(error.message);
      return;
    }
    const sentence = error instanceof ApiError ? error.message : `The console failed unexpectedly: ${error}.`;
    alertSource = source;
    alertBox.replaceChildren(
      h("p", { text: sentence }),
      h("button", { type: "button", class: "link", onclick: () => context.recover(), text: "Dismiss" }),
    );
    alertBox.hidden = false;
  },
  /** Clears the error `source` showed (any error without a source). */
  recover(source = null) {
    if (source === null || source === alertSource) {
      alertBox.hidden = true;
      alertBox.replaceChildren();
      alertSource = null;
    }
  },
  /** Says `sentence` until the page changes. */
  say(sentence) {
    notice.textContent = sentence;
  },
  /** Goes to the page at `hash` and says `sentence` there. */
  go(hash, sentence) {
    carried = sentence;
    location.hash = hash;
  },
  title(text) {
    document.title = `${text} · Liara console`;
  },
};

function parseRoute() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name = "crises", ...rest] = path.split("/").filter(Boolean);
  return { name, id: rest.length ? decodeURIComponent(rest.join("/")) : null, params: new URLSearchParams(query) };
}

function show() {
  leave?.();
  leave = null;
  context.recover();
  context.say(carried);
  carried = "";
  const route = parseRoute();
  let view;
  if (route.name === "crises" && route.id) view = crisisView(context, route.id);
  else if (route.name === "approvals") view = approvalsView(context);
  else if (route.name === "start" && context.may("operate")) view = startView(context);
  else view = crisesView(context, route.params);
  const current = route.id ? null : view.name;
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.view === current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.replaceChildren(view.element);
  leave = view.leave;
  view.element.querySelector("h1")?.focus({ preventScroll: true });
}

function signedIn(me, settings) {
  context.me = me;
  context.settings = settings;
  document.getElementById("who-name").textContent = `Signed in as ${me.name} (${me.role})`;
  document.getElementById("sign-out").hidden = !session.token; // a service without tokens has no one to forget
  for (const link of nav.querySelectorAll("[data-needs]")) link.parentElement.hidden = !context.may(link.dataset.needs);
  nav.hidden = false;
  who.hidden = false;
  window.addEventListener("hashchange", show);
  show();
}

/** Back to the sign-in form, the token forgotten (unless `forget` is false); `reason` says why. */
function signedOut(reason = "", forget = true) {
  leave?.();
  leave = null;
  if (forget) session.token = null;
  context.me = null;
  window.removeEventListener("hashchange", show);
  nav.hidden = true;
  who.hidden = true;
  context.recover();
  context.say("");
  context.title("Sign in");
  main.replaceChildren(signInForm(reason));
  main.querySelector("input").focus();
}

function signInForm(reason) {
  const field = uid("token");
  const error = h("p", { id: `${field}-error`, class: "field-error", text: reason });
  const input = h("input", {
    id: field,
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": `${field}-help ${field}-error`,
    "aria-invalid": reason ? "true" : null,
  });
  const button = h("button", { type: "submit", class: "primary", text: "Sign in" });
  const form = h(
    "form",
    {
      class: "card signin",
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        error.textContent = "";
        session.token = input.value.trim();
        try {
          await enter();
        } catch (err) {
          session.token = null;
          error.textContent = err.message;
          input.setAttribute("aria-invalid", "true");
          input.focus();
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h1", { tabindex: "-1", text: "Sign in" }),
    h("label", { for: field, text: "API token" }),
    input,
    h("p", {
      id: `${field}-help`,
      class: "help",
      text: "A token of `liara token create`. It is kept in this browser tab only, until you sign out.",
    }),
    error,
    button,
  );
  return form;
}

/** Who the token (or, without one, this machine) is; raises the API's refusal. */
async function enter() {
  const me = await api("/v1/me");
  const settings = await api("/v1/console");
  signedIn(me, settings);
}

document.getElementById("sign-out").addEventListener("click", () => signedOut());

// A stored token signs in again; without one, a service without tokens lets this machine in.
// Only a refused token is forgotten: one the service could not check yet is kept for a reload.
enter().catch((err) => {
  const refused = err instanceof ApiError && err.status === 401;
  signedOut(refused && !session.token ? "" : err.message, refused);
});
