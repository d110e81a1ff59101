// Exchanges we initiate, strongSwan task-queue style, one module per step:
//   task-queue.ts       a task waits its turn and builds its request;
//   task-retransmit.ts  the request in flight: retransmission, timeout, what follows an SA's death;
//   task-responses.ts   its answer goes to the step for its kind (IKE_SA_INIT, IKE_AUTH here);
//   child-tasks.ts      Child SA create/rekey/delete (CREATE_CHILD_SA, INFORMATIONAL);
//   ike-rekey-tasks.ts  IKE SA rekey and IKE_FOLLOWUP_KE, handing over to the successor.
// This module is the one import for the engine core.
export { next, queueTask } from './task-queue.js';
export { arm, mtuOf, newSa, retire, scheduleRetry, startInitiator } from './task-retransmit.js';
export { handleResponse } from './task-responses.js';
export { adoptSuccessor, awaitOldIkeDelete } from './ike-rekey-tasks.js';
