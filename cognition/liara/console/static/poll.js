// Waiting, and doing something every few seconds while the page is visible.

/** Resolves after `ms`, or as soon as `signal` aborts. */
export function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

function visible(signal) {
  if (!document.hidden) return Promise.resolve();
  return new Promise((resolve) => {
    const shown = () => {
      if (!document.hidden) {
        document.removeEventListener("visibilitychange", shown);
        resolve();
      }
    };
    document.addEventListener("visibilitychange", shown);
    signal.addEventListener(
      "abort",
      () => {
        document.removeEventListener("visibilitychange", shown);
        resolve();
      },
      { once: true },
    );
  });
}

/** Runs `task` now, then `ms` after each run ends (never two at once), until `signal` aborts;
 * a hidden page is not polled. `task` reports its own errors. */
export async function poll(task, ms, signal) {
  while (!signal.aborted) {
    await task();
    await pause(ms, signal);
    await visible(signal);
  }
}
