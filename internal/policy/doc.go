// Package policy decides, before any data is touched, whether and how a
// requester may get a result from one dataset of the Yangtze River Delta
// exchange, under the Data Security Law (classification levels), the
// Personal Information Protection Law (personal and sensitive personal
// information) and Shanghai's data regulation (Lingang cross-border trial).
//
// The engine is pure: no I/O, no clock reads and no mutable globals. Every
// node evaluates the same [Request] to the same [yrdv1.Decision], so a
// decision can be reproduced from the audit trail (the rule ids and
// policy_version are recorded with it). The rules are code; their numeric
// parameters are the replicated [yrdv1.PolicyParams].
//
// # Evaluation
//
// Rules are evaluated in groups, in the order of the table below. Within a
// group every rule is evaluated, so a requester learns all problems of one
// kind at once; if any rule of a group denies, evaluation stops and the
// decision is DENY, with the rule ids of every denying rule of that group
// and one reason sentence for each. Gate rules that pass are not recorded: a
// rule "fires" when it denies, restricts (a treatment other than RAW, a
// withheld column, a group floor) or authorises (the rule that allows the
// result form, the grant relied on). Reason is one lowercase sentence per
// fired rule, joined by "; ".
//
// A DENY decision still lists every column the result would have shown, all
// WITHHELD, so that the audit record says what was asked for.
//
// # Rule ids
//
// The ids are stable strings; audit records and tests refer to them.
//
//	group        id                              effect
//	request      request.complete                DENY: whatever ValidateAccess rejects; no dataset, access request or Now
//	request      params.valid                    DENY: params missing, version 0, k < 2 or row_cap 0
//	requester    role.analyst                    DENY: requester's role is not ROLE_ANALYST
//	dataset      dataset.retired                 DENY: the dataset is retired
//	dataset      rights.processing-use           DENY: data_rights.processing_use_right not confirmed
//	dataset      purpose.permitted               DENY: purpose not among permitted_purposes (if any are listed)
//	dataset      level.core                      DENY: CORE (or unknown) level, metadata only
//	query        identifier.direct               DENY: filter, group or order on a DIRECT identifier
//	query        aggregate.no-minmax-personal    DENY: min/max over a PERSONAL or SENSITIVE column
//	query        aggregate.group-columns         DENY: shown column of an aggregate neither grouped nor aggregated
//	cross-border crossborder.general-only        DENY: level is not GENERAL
//	cross-border crossborder.eligible            DENY: dataset not cross_border_eligible
//	cross-border crossborder.trial-sector        DENY: sector not in params.trial_sectors
//	cross-border crossborder.no-personal         DENY: personal column named; WITHHELD when only implied by an empty projection
//	cross-border crossborder.threshold           DENY: this year's exports reached the (sensitive) individuals limit
//	general      general.hidden-predicate        DENY: rows filtered or ordered on a column not shown RAW
//	general      general.rows                    ALLOW_ROWS, row_cap = params.row_cap
//	general      general.aggregates              ALLOW_AGGREGATES, min_group_size = max(params k, dataset min_group_size)
//	general      general.personal.pseudonymise   PERSONAL DIRECT identifier in rows: PSEUDONYMISED
//	general      general.quasi.generalise        QUASI identifier with a generalisation in rows: GENERALISED
//	general      general.quasi.withhold          QUASI identifier without one in rows: WITHHELD
//	general      general.personal.mask           other PERSONAL column in rows: MASKED
//	general      general.personal.grant          PERSONAL column in rows RAW under a grant with allow_personal
//	general      general.sensitive.withhold      SENSITIVE column in rows: WITHHELD
//	important    important.grant                 DENY without an applicable grant; otherwise records the grant relied on
//	important    important.aggregates-only       DENY: rows requested
//	important    important.k-anonymity           ALLOW_AGGREGATES, min_group_size = max(params k, dataset min_group_size)
//	aggregates   aggregate.sensitive-grant       DENY: a SENSITIVE column aggregated, grouped or filtered without a grant with allow_personal
//	aggregates   aggregate.noise-unsupported     DENY: min or max in a result that carries noise
//	aggregates   aggregate.sum-bound             DENY: a noisy sum or avg of a column with no declared bound
//	aggregates   aggregate.noise                 counts, sums and averages carry noise: noise_epsilon, budget_family
//	aggregates   aggregate.exact                 the owner chose exact aggregates and no personal column is aggregated
//
// Which aggregates reveal one row's value, take a numeric argument or
// cannot carry noise is internal/querylang's table; the rules read it by
// the access request's function names (its keys, e.g. count_distinct).
//
// The aggregates rules run inside the general and important groups, after
// their gates and before the rule that allows the result. One more id,
// aggregate.difference (RuleDifference), is not decided here: the owner
// records it when it holds back a group whose individuals differ from an
// earlier answer's by 1 to k-1 (internal/diffcheck).
//
// The cross-border group runs only when the requester's home node is
// outside the mainland; the general or important group runs by level.
//
// # Judgment calls
//
// Where the requirements were silent the engine chooses what a regulator
// would expect, failing closed:
//
//   - Unknown input never widens access. A column whose personal_info is
//     unspecified or unknown counts as SENSITIVE; a DIRECT or QUASI
//     identifier tagged NONE counts as PERSONAL (an identifier of a person
//     is personal information); an unknown identifier role counts as DIRECT;
//     an unspecified or unknown level counts as CORE (derived_level CORE).
//   - A purpose is always required (PIPL art. 6), even when the dataset
//     lists no permitted purposes: ValidateAccess rejects a request without
//     one. Retired datasets answer no queries.
//   - k is params.default_min_group_size, raised for one dataset by its
//     min_group_size (0 means the default); a dataset can never lower it.
//   - Aggregates over groups of at least k individuals show group keys and
//     statistics RAW, also for PERSONAL and SENSITIVE columns, but a group
//     floor alone does not make them anonymous: a series of permitted
//     answers can be subtracted. What protects individuals there is the
//     group floor, the ban on min/max over personal columns and on
//     grouping by a direct identifier, calibrated noise by default (below)
//     and the owner's difference check (internal/diffcheck).
//   - A quasi-identifier in rows is generalised by the catalog's rule (a
//     band, a prefix, a month or year) or withheld: a keyed token per
//     value could still be grouped, counted and, for a column of few
//     values such as gender, decoded by its frequencies.
//
// # Noise and the guarantee
//
// Counts, sums and averages over a dataset with personal information carry
// discrete Laplace noise (internal/noise) unless the owner set
// exact_aggregates and the result aggregates no PERSONAL or SENSITIVE
// column; IMPORTANT data and anything that uses a SENSITIVE column are
// always noised, and using a SENSITIVE column in an aggregate needs a
// grant with allow_personal. A noisy query spends QueryEpsilon: the
// dataset's noise_epsilon or the policy's default_query_epsilon (0.5),
// never more than max_query_epsilon (1). The epsilon is shared equally by
// the distinct quantities the result is computed from (count(*),
// count(x), count(DISTINCT x), sum(x)); an avg is a noisy sum over a
// noisy count, and ORDER BY and LIMIT over aggregates are applied to the
// noisy values, so nothing exact leaks through the order. Sums clamp each
// value to the column's sum_bound (or the dataset's noise_sum_bound).
//
// Budget: each noisy query is charged, through the replicated catalog and
// before any data is read, to the requesting organisation's budget for
// the dataset's family (Family: its standard_schema_id) and calendar year
// in China time; privacy_budget (10) bounds it. A family query is charged
// once per owner that answers. So, for one organisation, everything it
// learns from noisy answers on one family in one year is
// privacy_budget-differentially private with respect to any one record:
// one individual's presence changes the probability of any set of answers
// by at most a factor e^budget. The guarantee is per record: an
// individual with several records (hospital visits) or in several cities'
// datasets of a family is protected with that many times the epsilon.
// Organisations do not share a budget, and colluding organisations add
// their epsilons. min, max and exact aggregates carry none of this.
//   - A row result may not filter or order on a column it masks,
//     pseudonymises or withholds (general.hidden-predicate): "where
//     care_level = 6" would reveal, row by row, the value that is withheld.
//   - Grants: a ROWS grant also covers aggregates; an AGGREGATES grant
//     covers only aggregates. For IMPORTANT data the grant is judged against
//     aggregates, the only form that can leave, so a rows request fails on
//     important.aggregates-only and not on the grant. An approved grant
//     needs expires_at (no expiry, no grant) and is expired at expires_at
//     ≤ Now; any revoked_at counts as revoked whatever the state.
//   - Among several applicable grants the engine prefers, on GENERAL data,
//     one with allow_personal, then the smallest id, so the choice does not
//     depend on the order of Request.Grants. When none applies the reason
//     is that of the grant that came closest; grants for another dataset or
//     another organisation count as no grant, so that one organisation's
//     grants are never described to another.
//   - On GENERAL mainland decisions grant_id is the applicable grant even
//     without allow_personal: the executor scopes pseudonym keys by dataset
//     and grant, so values join within a grant but not across. Cross-border
//     decisions rely on the trial, not on grants, and carry no grant_id.
//     Denials carry no grant_id.
//   - crossborder.threshold denies once the owning organisation's exports
//     this year reached a limit (≥). Since crossborder.no-personal keeps
//     personal information out of every cross-border result, an allowed
//     export adds none; counting exports is the caller's job.
//   - Malformed requests that ValidateAccess would reject are denied by
//     request.complete instead of being trusted, so Decide is total.
package policy
