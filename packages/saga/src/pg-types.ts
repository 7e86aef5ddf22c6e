/** The PostgreSQL client shapes the saga uses: the consumer's own, which a `pg.Pool` satisfies as it is. */
export type { PgPool, PgPoolClient, PgQueryable, PgQueryResult } from '@oncely/consumer';
