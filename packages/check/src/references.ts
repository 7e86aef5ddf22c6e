/**
 * What each verdict rests on. The draft's section numbers are those of
 * draft-ietf-httpapi-idempotency-key-header; its sections have kept their order across revisions.
 */

export interface Reference {
  /** Short name, e.g. `IETF draft §2.7`. */
  name: string;
  /** What it says, in a sentence. */
  says: string;
  url: string;
}

const STRIPE = 'https://docs.stripe.com/api/idempotent_requests';
const DRAFT = 'https://datatracker.ietf.org/doc/html/draft-ietf-httpapi-idempotency-key-header';

export const REFERENCES = {
  draftSyntax: {
    name: 'IETF draft §2.1',
    says: 'the value is an sf-string; clients MUST NOT send more than one Idempotency-Key field',
    url: `${DRAFT}#section-2.1`,
  },
  draftUniqueness: {
    name: 'IETF draft §2.2',
    says: 'a key MUST NOT be reused with a different request payload',
    url: `${DRAFT}#section-2.2`,
  },
  draftRetry: {
    name: 'IETF draft §2.6',
    says: 'a retry after the original completed SHOULD get the result of that operation, success or an error',
    url: `${DRAFT}#section-2.6`,
  },
  draftConcurrent: {
    name: 'IETF draft §2.6',
    says: 'a retry before the original completed MUST get a resource conflict error',
    url: `${DRAFT}#section-2.6`,
  },
  draftMissing: {
    name: 'IETF draft §2.7',
    says: 'a missing key on an operation that requires it SHOULD get 400',
    url: `${DRAFT}#section-2.7`,
  },
  draftReused: {
    name: 'IETF draft §2.7',
    says: 'a key reused with a different payload SHOULD get 422',
    url: `${DRAFT}#section-2.7`,
  },
  draftInProgress: {
    name: 'IETF draft §2.7',
    says: 'a retry while the original is still processed SHOULD get 409',
    url: `${DRAFT}#section-2.7`,
  },
  draftSecurity: {
    name: 'IETF draft §5',
    says: 'validate keys against a published format before processing; look them up by a composite key (client and key)',
    url: `${DRAFT}#section-5`,
  },
  stripeRetry: {
    name: 'Stripe',
    says: 'saves the status and body of the first request once it began executing and returns them to every retry with the key, 500s included',
    url: STRIPE,
  },
  stripeReplayed: {
    name: 'Stripe',
    says: 'marks a replayed response with Idempotent-Replayed: true',
    url: STRIPE,
  },
  stripeMismatch: {
    name: 'Stripe',
    says: "compares a retry's parameters with the original's and refuses a mismatch",
    url: STRIPE,
  },
  stripeNotSaved: {
    name: 'Stripe',
    says: 'saves nothing when the parameters fail validation or the request conflicts with a concurrent one: retry those',
    url: STRIPE,
  },
  stripeKeys: {
    name: 'Stripe',
    says: 'keys are up to 255 characters; a key is optional on every POST',
    url: STRIPE,
  },
  rfc9110Retry: {
    name: 'RFC 9110 §9.2.2',
    says: 'a client may repeat a non-idempotent request only if it can tell the request is idempotent or was never applied: a lost response is exactly what the key is for',
    url: 'https://www.rfc-editor.org/rfc/rfc9110#section-9.2.2',
  },
  rfc9110FieldLines: {
    name: 'RFC 9110 §5.3',
    says: 'several lines of one field are combined into one comma-separated value, which is no longer one sf-string',
    url: 'https://www.rfc-editor.org/rfc/rfc9110#section-5.3',
  },
  rfc9651String: {
    name: 'RFC 9651 §3.3.3',
    says: 'an sf-string holds printable ASCII only',
    url: 'https://www.rfc-editor.org/rfc/rfc9651#section-3.3.3',
  },
} as const satisfies Record<string, Reference>;
