// One definition for every package that talks to PostgreSQL: @oncely/core/internal.
export type { PgPool, PgPoolClient, PgQueryable, PgQueryResult, PoolClientOf } from '@oncely/core/internal';
