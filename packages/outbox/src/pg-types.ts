// One definition for every package that talks to PostgreSQL: @oncely/core/internal.
export type { PgQueryable, PgQueryResult } from '@oncely/core/internal';
