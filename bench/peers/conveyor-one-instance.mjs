// Conveyor in one instance at a time (see conveyor.mjs): the instance that runs the pool takes the
// enqueues, as `npm start` serves the API and runs the pool in one process.
import { createAdapter } from './conveyor.mjs';

export default function create(context) {
  return createAdapter(context, { oneInstance: true });
}
