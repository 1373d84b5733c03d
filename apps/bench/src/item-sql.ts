/** The read of section 1's `/item/:id` route and of `bench:memory`: one row by primary key. */
export const ITEM_SQL = 'SELECT id, owner, version, body FROM bench_items WHERE id = $1';
