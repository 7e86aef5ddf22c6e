/**
 * Requests whose key is missing or not a key. A missing key on an operation that needs one should be
 * refused (400, IETF draft §2.7); an API may also make the key optional, as Stripe does, and run the
 * request unprotected. An invalid key should be refused before anything runs (draft §5: validate the
 * key against its published format): a server that truncates 256 characters to 255, or reads only one
 * of two header lines, merges keys the client meant to be different.
 */

import { ok } from '../compare.ts';
import type { Exchange } from '../exchange.ts';
import { REFERENCES, type Reference } from '../references.ts';
import { evidence } from '../report.ts';
import { type CaseOutcome, type CaseRun, status } from './outcome.ts';

/** How an invalid key's answer is judged: refused (4xx) passes, run or crashed warns. */
function judgeInvalid(reply: Exchange, accepted: string, references: Reference[]): CaseOutcome {
  const exchanges = [evidence(reply, true)];
  if (reply.status >= 400 && reply.status < 500) {
    return { verdict: 'pass', summary: `refused with ${reply.status}`, exchanges, references };
  }
  if (ok(reply))
    return { verdict: 'warn', summary: `accepted (${reply.status}): ${accepted}`, exchanges, references };
  if (reply.status === 0) {
    return {
      verdict: 'warn',
      summary: `no answer (${reply.error ?? 'closed'}): a client cannot tell whether it ran`,
      exchanges,
      references,
    };
  }
  return {
    verdict: 'warn',
    summary: `answered ${status(reply)}: the key is not refused as invalid, the server failed on it`,
    exchanges,
    references,
  };
}

export const missingKeyCase: CaseRun = async (probe) => {
  const references = [REFERENCES.draftMissing, REFERENCES.stripeKeys];
  const reply = await probe.send('no key', { key: null, body: probe.payload().text });
  const exchanges = [evidence(reply, true)];
  if (reply.status >= 400 && reply.status < 500) {
    return {
      verdict: 'pass',
      summary: `refused with ${reply.status}: the key is required`,
      exchanges,
      references,
    };
  }
  if (ok(reply)) {
    return {
      verdict: 'info',
      summary: `accepted (${reply.status}): the key is optional, a request without one runs unprotected (as on Stripe)`,
      details: [
        'the draft asks for 400 where the operation requires the key; a client that forgets it gets no protection',
      ],
      exchanges,
      references,
    };
  }
  return { verdict: 'warn', summary: `answered ${status(reply)}`, exchanges, references };
};

export const longKeyCase: CaseRun = async (probe) => {
  // 256 characters, all of them part of this run's key, so the request is found by its prefix.
  const prefix = probe.key('long-');
  const key = prefix + 'k'.repeat(256 - prefix.length);
  const reply = await probe.raw('256-character key', {
    keyLines: [probe.keyValue(key)],
    body: probe.payload().text,
    shown: `${prefix}k… (256 characters)`,
  });
  return judgeInvalid(
    reply,
    'Stripe and Oncely take keys of at most 255 characters; a server that cuts keys to its column size merges two keys that differ past it',
    [REFERENCES.draftSecurity, REFERENCES.stripeKeys],
  );
};

export const nonAsciiKeyCase: CaseRun = async (probe) => {
  const key = `${probe.key('non-ascii-')}café`;
  const reply = await probe.raw('non-ASCII key', {
    keyLines: [probe.keyValue(key)],
    body: probe.payload().text,
    shown: `${key} (UTF-8)`,
  });
  return judgeInvalid(
    reply,
    'a key is printable ASCII; servers and stores that decode the bytes differently (Latin-1, UTF-8) see different keys',
    [REFERENCES.draftSyntax, REFERENCES.rfc9651String, REFERENCES.draftSecurity],
  );
};

export const twoKeysCase: CaseRun = async (probe) => {
  const one = probe.key('two-keys-1');
  const two = probe.key('two-keys-2');
  const reply = await probe.raw('two key lines', {
    keyLines: [probe.keyValue(one), probe.keyValue(two)],
    body: probe.payload().text,
    shown: `${one} + ${two} (two lines)`,
  });
  return judgeInvalid(
    reply,
    'which of the two keys did it use? A retry that sends only the other one runs again',
    [REFERENCES.draftSyntax, REFERENCES.rfc9110FieldLines],
  );
};
