/**
 * @oncely/chaos (private): the chaos test of DESIGN §7. Oncely servers are SIGKILLed at random under
 * duplicate and timed-out traffic; every extra execution must be explained by a kill. See
 * docs/reliability.md.
 */
export { CHAOS_DEFAULTS, type ChaosOptions, type ChaosReport, formatReport, runScenario } from './chaos.ts';
export { type ChaosEvidence, type CheckName, checkChaos, type Finding, type Verdict } from './checks.ts';
export { SCENARIOS, type ScenarioName } from './scenarios.ts';
