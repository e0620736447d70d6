// What the pages share: who is signed in, and page-scoped timers that stop when the user
// navigates away (each navigation starts a new "generation").

// pendingSecret: a secret an answer carried once ({workflowId, secret}), for the next page to show.
export const session = { me: null, pendingSecret: null };

let generation = 0;
const timers = new Set();

/** Start a new page: cancels every timer of the previous one. Returns the page's token. */
export function newPage() {
  generation += 1;
  for (const timer of timers) clearTimeout(timer);
  timers.clear();
  return generation;
}

export function alive(token) { return token === generation; }

/**
 * Call `fn` every `ms` milliseconds while page `token` is shown. `fn` decides itself whether
 * there is anything to refresh (it does nothing once every execution on screen has ended).
 * Hidden tabs skip ticks.
 */
export function every(token, ms, fn) {
  const tick = async () => {
    timers.delete(handle);
    if (!alive(token)) return;
    if (!document.hidden) {
      try { await fn(); } catch (error) { console.warn("refresh failed", error); }
    }
    if (alive(token)) { handle = setTimeout(tick, ms); timers.add(handle); }
  };
  let handle = setTimeout(tick, ms);
  timers.add(handle);
}
