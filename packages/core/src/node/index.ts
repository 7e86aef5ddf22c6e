/**
 * @oncely/core/node: the HTTP edge on Node's own `http` objects, written once for every adapter
 * built on `node:http` (Express, Fastify's raw request, the gateway): request info, a bounded body
 * reader, a response recorder and writer, header lists, and the client-disconnect policy. The root
 * export stays free of Node-only modules, so it also runs on Workers, Deno and Bun; the rules that
 * need no Node object (`bodyAllowed`, `splitTarget`, `headerPairs` …) are exported there.
 */
export {
  type CaptureResponseOptions,
  captureResponse,
  type ResponseCapture,
} from './capture-response.ts';
export { onClientGone } from './client-gone.ts';
export { clientSignal } from './client-signal.ts';
export { flatHeaders, rawHeaderPairs } from './header-lines.ts';
export {
  BodyReadError,
  BodyTooLargeError,
  type ReadBodyOptions,
  RequestAbortedError,
  readBody,
} from './read-body.ts';
export { badTarget, type RequestInfoOptions, requestInfo } from './request-info.ts';
export {
  type ResponseHead,
  type ResponseRecorder,
  type ResponseRecorderOptions,
  responseRecorder,
} from './response-recorder.ts';
export { type WriteResponseOptions, writeResponse } from './write-response.ts';
