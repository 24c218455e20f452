"""Permutohedral-lattice Gaussian filtering (Adams, Baek & Davis 2010) with static shapes.

Approximates out_i = sum_j exp(-|f_i - f_j|^2 / 2) v_j for N points with d-dimensional features f
(already divided by their standard deviations) in O(N d^2 + M d) per channel, M = lattice vertices:
splat each point onto the d+1 corners of its enclosing simplex (barycentric weights), blur the
vertices with [1 2 1] / 4 along each of the d+1 lattice directions, slice back with the same
weights. Constant factors are left out (callers normalise, e.g. D^-1/2 K D^-1/2).

jit-friendly: the vertex table has the fixed capacity N (d+1) (every point could open d+1 new
vertices), padded to whole chunks. Vertices are found with an open-addressing hash table (linear
probing, a scatter-min per probe round) instead of a sort, which XLA runs slowly on CPU. Work on
vertex rows (neighbour search, blur, zeroing) runs in while loops over chunks of the first M rows,
so it costs O(M), not O(capacity). The index arrays are built once and shared by every filtering
and every channel. Layouts: per-point arrays are (d+1, N), the vertex table is (rows + 1, C) with
a last row that stays zero (the index of absent neighbours).
"""
import math
from typing import NamedTuple, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

CHUNK_ROWS = 8192  # vertex rows per while-loop step
_EMPTY = np.int32(np.iinfo(np.int32).max)  # hash slot without owner
_WORD_BITS = 32


class Lattice(NamedTuple):
  """Index structure of one point set. P = N points, V = vertex rows (static), S = V (sentinel).

  vertex: (d+1, P) int32, row of the k-th corner of each point's simplex.
  weight: (d+1, P) float32, barycentric weights (each column sums to 1).
  neighbours: (d+1, 2, V) int32, rows of v + u_j and v - u_j, S where absent or v >= M.
  num_vertices: () int32, M.
  """
  vertex: jax.Array
  weight: jax.Array
  neighbours: jax.Array
  num_vertices: jax.Array

  @property
  def rows(self) -> int:
    return self.neighbours.shape[-1]


def elevation_matrix(d: int) -> np.ndarray:
  """(d+1, d) map from feature space onto the hyperplane sum(x) = 0 of R^(d+1).

  Orthonormal columns (column j has j ones, then -j, then zeros, over sqrt(j(j+1))), scaled by
  sqrt(2/3) (d+1): the [1 2 1] blur along the d+1 lattice directions adds a variance of
  (d+1)^2 / 2 per axis and splat + slice about (d+1)^2 / 6, so unit feature distance maps to a
  unit-variance Gaussian.
  """
  elevate = np.zeros((d + 1, d))
  for j in range(1, d + 1):
    elevate[:j, j - 1] = 1.0
    elevate[j, j - 1] = -j
    elevate[:, j - 1] /= np.sqrt(j * (j + 1))
  return elevate * np.sqrt(2.0 / 3.0) * (d + 1)


def enclosing_simplex(elevated: jax.Array) -> Tuple[jax.Array, jax.Array, jax.Array]:
  """Remainder-0 corner, ranks and barycentric weights for elevated points (d+1, P) float32.

  Returns r (d+1, P) int32 with the remainder-0 corner = (d+1) r, rank (d+1, P) int32 (0 = the
  coordinate farthest above that corner, ties broken by index) and weights (d+1, P) float32, the
  weight of corner k = (d+1) r + k on coordinates of rank < d+1-k and k-(d+1) on the others.
  """
  d1 = elevated.shape[0]
  order = jnp.arange(d1)[:, None, None]
  r = jnp.round(elevated / d1).astype(jnp.int32)
  delta = elevated - (d1 * r).astype(elevated.dtype)
  # rank_i = number of coordinates j above i; on ties the lower index ranks higher
  other = jnp.arange(d1)[None, :, None]
  above = (delta[None] > delta[:, None]) | ((delta[None] == delta[:, None]) & (other < order))
  rank = jnp.sum(above, axis=1, dtype=jnp.int32)
  excess = jnp.sum(r, axis=0, keepdims=True)  # (d+1) * excess: how far the corner is off the plane
  down = (excess > 0) & (rank >= d1 - excess)
  up = (excess < 0) & (rank < -excess)
  r = r - down.astype(jnp.int32) + up.astype(jnp.int32)
  rank = rank + excess + jnp.where(down, -d1, 0) + jnp.where(up, d1, 0)
  delta = elevated - (d1 * r).astype(elevated.dtype)
  by_rank = jnp.sum(jnp.where(rank[None] == order, delta[None], 0.0), axis=1)  # descending
  gaps = (by_rank[:-1] - by_rank[1:]) / d1  # gaps[q] = weight of corner d - q
  weights = jnp.concatenate([1.0 - jnp.sum(gaps, axis=0, keepdims=True), gaps[::-1]])
  return r, rank, weights


class _KeyCodec(NamedTuple):
  """Packs a vertex (k, q_0..q_{d-1}), coordinates c_j = (d+1) q_j + k, into uint32 words."""
  low: Tuple[int, ...]          # smallest q_j per coordinate
  fields: Tuple[Tuple[int, int, int], ...]  # (word, shift, bits) for k, q_0, ..., q_{d-1}
  words: int

  @staticmethod
  def for_bounds(elevated_low: np.ndarray, elevated_high: np.ndarray) -> '_KeyCodec':
    d1 = len(elevated_low)
    # r = round(x / (d+1)) +- 1, q = r - (0 or 1), neighbours move q by at most 1: 2 of margin.
    low = np.floor(elevated_low[:-1] / d1).astype(int) - 3
    high = np.ceil(elevated_high[:-1] / d1).astype(int) + 3
    bits = [max(1, math.ceil(math.log2(d1)))]
    bits += [max(1, math.ceil(math.log2(h - l + 1))) for l, h in zip(low, high)]
    if max(bits) > _WORD_BITS:
      raise ValueError(f'lattice coordinates span more than 2^{_WORD_BITS} values: {bits} bits')
    fields, word, shift = [], 0, 0
    for b in bits:
      if shift + b > _WORD_BITS:
        word, shift = word + 1, 0
      fields.append((word, shift, b))
      shift += b
    return _KeyCodec(tuple(int(l) for l in low), tuple(fields), word + 1)

  def pack(self, k: jax.Array, q: jax.Array) -> jax.Array:
    """k (...) and q (d, ...) int32 -> (words, ...) uint32."""
    values = jnp.concatenate([k[None], q - self._column(self.low, q.ndim)]).astype(jnp.uint32)
    shifted = values << self._column([s for _, s, _ in self.fields], q.ndim, jnp.uint32)
    word_of = np.array([w for w, _, _ in self.fields])
    # fields of one word occupy disjoint bits: their sum is their bitwise or
    return jnp.stack([jnp.sum(shifted[word_of == w], axis=0, dtype=jnp.uint32)
                      for w in range(self.words)])

  def unpack(self, words: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """(words, ...) uint32 -> k (...), q (d, ...) int32."""
    spread = words[np.array([w for w, _, _ in self.fields])]
    shifts = self._column([s for _, s, _ in self.fields], words.ndim, jnp.uint32)
    masks = self._column([(1 << b) - 1 for _, _, b in self.fields], words.ndim, jnp.uint32)
    values = ((spread >> shifts) & masks).astype(jnp.int32)
    return values[0], values[1:] + self._column(self.low, words.ndim)

  @staticmethod
  def _column(values, ndim: int, dtype=jnp.int32) -> jax.Array:
    return jnp.asarray(np.asarray(values).reshape((-1,) + (1,) * (ndim - 1)), dtype)


def _hash(words: jax.Array, mask: int) -> jax.Array:
  """(W, ...) uint32 -> (...) int32 slot in [0, mask]: murmur3 finaliser chained over words."""
  h = jnp.zeros(words.shape[1:], jnp.uint32)
  for w in range(words.shape[0]):
    h = (h ^ words[w]) * jnp.uint32(0x9E3779B1)
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    h = h ^ (h >> 16)
  return (h & jnp.uint32(mask)).astype(jnp.int32)


def _same_key(table_words: jax.Array, owner: jax.Array, words: jax.Array) -> jax.Array:
  same = jnp.ones(owner.shape, bool)
  for w in range(words.shape[0]):
    same = same & (table_words[w].at[owner].get(mode='promise_in_bounds') == words[w])
  return same


def _insert(words: jax.Array, table_size: int) -> Tuple[jax.Array, jax.Array]:
  """Open-addressing insert of E keys (W, E). Returns (owner table (T,), slot of each key (E,)).

  All copies of a key share a probe sequence, so they claim a slot in the same round and the
  slot's owner is the smallest entry index holding that key.
  """
  num = words.shape[1]
  mask = table_size - 1
  ids = jnp.arange(num, dtype=jnp.int32)

  def probe(state):
    slot, done, owner = state
    free = owner.at[slot].get(mode='promise_in_bounds') == _EMPTY
    owner = owner.at[slot].min(jnp.where(done | ~free, _EMPTY, ids), mode='promise_in_bounds')
    found = _same_key(words, owner.at[slot].get(mode='promise_in_bounds'), words)
    return jnp.where(found | done, slot, (slot + 1) & mask), done | found, owner

  state = (_hash(words, mask), jnp.zeros(num, bool), jnp.full(table_size, _EMPTY, jnp.int32))
  slot, _, owner = lax.while_loop(lambda s: ~jnp.all(s[1]), probe, state)
  return owner, slot


def _lookup(words: jax.Array, query: jax.Array, owner: jax.Array) -> jax.Array:
  """Entry index holding each query key (W, Q) -> (Q,) int32, _EMPTY where absent."""
  mask = owner.shape[0] - 1

  def probe(state):
    slot, result, done = state
    cur = owner.at[slot].get(mode='promise_in_bounds')
    empty = cur == _EMPTY
    found = ~empty & _same_key(words, jnp.where(empty, 0, cur), query)
    result = jnp.where(~done & found, cur, result)
    done = done | empty | found
    return jnp.where(done, slot, (slot + 1) & mask), result, done

  shape = query.shape[1:]
  state = (_hash(query, mask), jnp.full(shape, _EMPTY, jnp.int32), jnp.zeros(shape, bool))
  return lax.while_loop(lambda s: ~jnp.all(s[2]), probe, state)[1]


def exclusive_count(flags: jax.Array) -> jax.Array:
  """Exclusive prefix count of a bool vector (E,) -> int32 (E,).

  Counts inside blocks of 128 as one matmul with a strictly upper-triangular ones matrix, then a
  cumsum over the block totals (XLA's CPU cumsum is a slow reduce-window; float32 sums of 0/1 are
  exact below 2^24).
  """
  num = flags.shape[0]
  block = 128
  if num >= 1 << 24 or num < 4 * block:
    return (jnp.cumsum(flags.astype(jnp.int32)) - flags.astype(jnp.int32)).astype(jnp.int32)
  padded = -(-num // block) * block
  x = jnp.zeros(padded, jnp.float32).at[:num].set(flags.astype(jnp.float32)).reshape(-1, block)
  strict_upper = jnp.asarray(np.triu(np.ones((block, block), np.float32), 1))
  within = jnp.dot(x, strict_upper, precision=lax.Precision.HIGHEST)
  totals = within[:, -1] + x[:, -1]
  offsets = jnp.cumsum(totals) - totals
  return (within + offsets[:, None]).reshape(-1)[:num].astype(jnp.int32)


def _chunk_rows(num_entries: int) -> Tuple[int, int]:
  """(rows per chunk, vertex rows V): V >= num_entries, a whole number of chunks."""
  chunk = min(CHUNK_ROWS, -(-num_entries // 8) * 8)
  return chunk, -(-num_entries // chunk) * chunk


def _for_chunks(num_valid: jax.Array, chunk: int, body, init):
  """body(start_row, carry) over the chunks that cover rows [0, num_valid)."""
  return lax.fori_loop(0, (num_valid + chunk - 1) // chunk, lambda i, c: body(i * chunk, c), init)


def _neighbour_keys(codec: _KeyCodec, words: jax.Array) -> jax.Array:
  """Keys (W, B) of vertices -> keys (W, d+1, 2, B) of v + u_j and v - u_j, u_j = (d+1) e_j - 1."""
  k, q = codec.unpack(words)
  d1 = q.shape[0] + 1
  coords = d1 * q + k[None]
  coords = jnp.concatenate([coords, -jnp.sum(coords, axis=0, keepdims=True)])  # (d+1, B)
  steps = np.stack([d1 * np.eye(d1, dtype=np.int32) - 1, 1 - d1 * np.eye(d1, dtype=np.int32)], 1)
  moved = coords[None, None] + jnp.asarray(steps)[..., None]  # (direction, sign, coordinate, B)
  k_moved = jnp.mod(moved[:, :, 0], d1)
  q_moved = jnp.moveaxis((moved[:, :, :-1] - k_moved[:, :, None]) // d1, 2, 0)
  return codec.pack(k_moved, q_moved)


def build_lattice(features: jax.Array, feature_low: Sequence[float],
                  feature_high: Sequence[float]) -> Lattice:
  """Lattice of points with features (P, d) float32, each feature within the static bounds
  [feature_low, feature_high] (they size the packed vertex keys; values outside corrupt them)."""
  num, d = features.shape
  d1 = d + 1
  elevate = elevation_matrix(d)
  low = np.asarray(feature_low, np.float64)
  high = np.asarray(feature_high, np.float64)
  codec = _KeyCodec.for_bounds(np.minimum(elevate * low, elevate * high).sum(1),
                               np.maximum(elevate * low, elevate * high).sum(1))
  elevated = jnp.dot(jnp.asarray(elevate, jnp.float32), features.T.astype(jnp.float32),
                     precision=lax.Precision.HIGHEST)
  r, rank, weight = enclosing_simplex(elevated)
  corner = jnp.arange(d1, dtype=jnp.int32)[:, None, None]  # (corner k, coordinate j, point)
  q = r[None, :d] - (rank[None, :d] >= d1 - corner).astype(jnp.int32)
  words = codec.pack(jnp.broadcast_to(corner[:, 0], (d1, num)), jnp.moveaxis(q, 1, 0))
  words = words.reshape(codec.words, d1 * num)  # entry e = k * P + i
  num_entries = d1 * num
  owner, slot = _insert(words, 1 << max(1, math.ceil(math.log2(2 * num_entries))))
  representative = owner.at[slot].get(mode='promise_in_bounds')
  ids = jnp.arange(num_entries, dtype=jnp.int32)
  is_representative = representative == ids
  row_of_entry = exclusive_count(is_representative)
  num_vertices = row_of_entry[-1] + is_representative[-1].astype(jnp.int32)
  vertex = row_of_entry.at[representative].get(mode='promise_in_bounds')
  chunk, rows = _chunk_rows(num_entries)
  entry_of_row = jnp.zeros(rows, jnp.int32).at[jnp.where(is_representative, row_of_entry, rows)].set(
      ids, mode='drop')

  def find_neighbours(start, neighbours):
    row_ids = start + jnp.arange(chunk, dtype=jnp.int32)
    entries = lax.dynamic_slice_in_dim(entry_of_row, start, chunk)
    query = _neighbour_keys(codec, words.at[:, entries].get(mode='promise_in_bounds'))
    found = _lookup(words, query, owner)
    found_rows = row_of_entry.at[jnp.where(found == _EMPTY, 0, found)].get(mode='promise_in_bounds')
    valid = (found != _EMPTY) & (row_ids < num_vertices)
    return lax.dynamic_update_slice_in_dim(neighbours, jnp.where(valid, found_rows, rows),
                                           start, axis=2)

  neighbours = _for_chunks(num_vertices, chunk, find_neighbours,
                           jnp.full((d1, 2, rows), rows, jnp.int32))
  return Lattice(vertex.reshape(d1, num), weight, neighbours, num_vertices)


def empty_tables(lattice: Lattice, channels: int) -> Tuple[jax.Array, jax.Array]:
  """Zeroed vertex table and blur scratch, (V + 1, C) float32 each, reusable across filterings."""
  table = jnp.zeros((lattice.rows + 1, channels), jnp.float32)
  return table, table


def _chunk(lattice: Lattice) -> int:
  return _chunk_rows(lattice.rows)[0]


def splat(lattice: Lattice, values: jax.Array, table: jax.Array) -> jax.Array:
  """Adds values (P, C) into table (V + 1, C) whose rows [0, M) are zero, one corner per step."""
  def corner(k, table):
    return table.at[lattice.vertex[k]].add(values * lattice.weight[k][:, None],
                                           mode='promise_in_bounds')
  return lax.fori_loop(0, lattice.vertex.shape[0], corner, table)


def blur(lattice: Lattice, table: jax.Array, scratch: jax.Array) -> Tuple[jax.Array, jax.Array]:
  """[1 2 1] / 4 along each lattice direction in turn; returns (blurred table, spare buffer).

  Two directions per loop step (table -> scratch -> table), so the buffers never swap places in
  the loop carry (a swap would copy them) and one loop body serves every direction.
  """
  chunk = _chunk(lattice)
  directions = lattice.neighbours.shape[0]

  def along(j, src, dst):
    def step(start, out):
      plus, minus = lax.dynamic_slice(lattice.neighbours, (j, 0, start), (1, 2, chunk))[0]
      centre = lax.dynamic_slice_in_dim(src, start, chunk)
      new = 0.5 * centre + 0.25 * (src.at[plus].get(mode='promise_in_bounds') +
                                   src.at[minus].get(mode='promise_in_bounds'))
      return lax.dynamic_update_slice_in_dim(out, new, start, axis=0)
    return _for_chunks(lattice.num_vertices, chunk, step, dst)

  def two_directions(i, buffers):
    a, b = buffers
    b = along(2 * i, a, b)
    return along(2 * i + 1, b, a), b

  table, scratch = lax.fori_loop(0, directions // 2, two_directions, (table, scratch))
  if directions % 2:
    return along(directions - 1, table, scratch), table
  return table, scratch


def slice_values(lattice: Lattice, table: jax.Array) -> jax.Array:
  """Barycentric interpolation of the vertex table (V + 1, C) at every point -> (P, C)."""
  out = 0.0
  for k in range(lattice.vertex.shape[0]):
    out = out + table.at[lattice.vertex[k]].get(mode='promise_in_bounds') * lattice.weight[k][:, None]
  return out


def zero_rows(lattice: Lattice, table: jax.Array) -> jax.Array:
  """Table with rows [0, M) (whole chunks) set to zero; O(M), not O(V)."""
  chunk = _chunk(lattice)
  zeros = jnp.zeros((chunk, table.shape[1]), table.dtype)
  return _for_chunks(lattice.num_vertices, chunk,
                     lambda start, t: lax.dynamic_update_slice_in_dim(t, zeros, start, axis=0), table)


def lattice_filter(lattice: Lattice, values: jax.Array,
                   tables: Tuple[jax.Array, jax.Array]) -> Tuple[jax.Array, Tuple[jax.Array, jax.Array]]:
  """Unnormalised Gaussian filtering of values (P, C) -> ((P, C), tables for the next call).

  tables: from `empty_tables` or a previous call (same C); their rows [M, V] must be zero.
  """
  table, scratch = tables
  table = splat(lattice, values.astype(jnp.float32), zero_rows(lattice, table))
  table, scratch = blur(lattice, table, scratch)
  return slice_values(lattice, table), (table, scratch)
