// Stepline's words as the server defines them (GET /vocabulary.json, no key needed): execution
// statuses, trigger kinds, roles... live once, in the domain; the UI reads them here instead of
// keeping copies that could drift. Loaded once, before any page renders (a top-level await).

async function load() {
  try {
    const response = await fetch("vocabulary.json", { headers: { Accept: "application/json" } });
    if (response.ok) return await response.json();
  } catch {
    // The API is unreachable: the pages say so when they call it; lists stay empty meanwhile.
  }
  return { step_states: [], execution_statuses: [], active_statuses: [], trigger_kinds: [], roles: [] };
}

export const VOCABULARY = await load();

/** A role's rank: each role may do what the ones before it may. */
export const ROLE_RANK = Object.fromEntries(VOCABULARY.roles.map((role, rank) => [role, rank]));
