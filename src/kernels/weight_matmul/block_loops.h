// The loops that cut a product into register blocks and tiles: the same on every instruction
// set, so written once here. Each SIMD file (avx2.cpp, avx512.cpp, neon.cpp) includes this header
// *inside its anonymous namespace*, so that every function below is compiled with that file's
// instruction set and stays private to it (kernels.h says why nothing may be shared with the
// linker). Before the include, the file defines:
//   smaller(a, b);
//   kRowsOfX × kRowsOfW, the register block of the float products (at most 4 rows of W);
//   kTileCols (columns per tile), kTileRows (rows of W widened at a time), kWidenTileFromRows;
//   F32, Bf16, F16: weight types with an Element type;
//   float_block_for<W>(r, c): the r × c register block of x rows times W rows of type W;
//   widen<W>(out, in, len): len weights of type W to f32.
// Included once per file (no include guard is needed, and none must stop a second file).

// y[i·ys + j] = (first tile ? 0 : y) + out[i][j] for i < r, j < c (out has rows of 4).
void add_tile(float* y, size_t ys, const float* out, int r, int c, bool first) {
    for (int i = 0; i < r; ++i)
        for (int j = 0; j < c; ++j)
            y[i * ys + j] = first ? out[4 * i + j] : y[i * ys + j] + out[4 * i + j];
}

// For rows [0, n) of x in groups of RowsOfX and rows [row_begin, row_end) of W in groups of
// RowsOfW (W's groups outside, so each group of W is read once for all of x): block(out, i, j, r,
// c) computes the r × c block at x row i, W row j into out, which is then added to y (row stride
// ys) by add_tile.
template <int RowsOfX, int RowsOfW, typename Block>
void for_each_register_block(float* y, size_t ys, int n, int row_begin, int row_end, bool first,
                             const Block& block) {
    for (int j = row_begin; j < row_end; j += RowsOfW) {
        const int c = smaller(RowsOfW, row_end - j);
        for (int i = 0; i < n; i += RowsOfX) {
            const int r = smaller(RowsOfX, n - i);
            float out[RowsOfX * 4];
            block(out, i, j, r, c);
            add_tile(y + i * ys + j, ys, out, r, c, first);
        }
    }
}

// One tile of columns [k0, k0 + len) for rows [j0, j0 + rows_of_w) of W (w points at row j0,
// column k0; row stride ws), all n rows of x (at column k0).
template <typename W>
void float_tile(float* y, size_t ys, const float* x, size_t xs, int n, const typename W::Element* w,
                size_t ws, int rows_of_w, int len, bool first) {
    for_each_register_block<kRowsOfX, kRowsOfW>(
        y, ys, n, 0, rows_of_w, first, [&](float* out, int i, int j, int r, int c) {
            float_block_for<W>(r, c)(out, x + i * xs, xs, w + j * ws, ws, len);
        });
}

// y = x · Wᵀ for rows [row_begin, row_end) of a bf16 / f16 W by f32 FMAs. Few rows of x: the
// weights are widened in registers as each group of rows of W is read from start to end (long
// streams for the hardware prefetcher). From kWidenTileFromRows rows: a tile of W is widened to
// f32 once and reused by all of them. Both give the same bits: the same f32 weights meet the same
// operations in the same order.
template <typename W>
void float_rows_of(float* y, const float* x, int n, const WeightMatrix& w, int row_begin,
                   int row_end) {
    const auto* weights = static_cast<const uint16_t*>(w.data);
    const size_t cols = static_cast<size_t>(w.cols), ys = static_cast<size_t>(w.rows);
    if (n < kWidenTileFromRows) {
        for (int j = row_begin; j < row_end; j += kRowsOfW) {
            const int rows = smaller(kRowsOfW, row_end - j);
            for (int k0 = 0; k0 < w.cols; k0 += kTileCols)
                float_tile<W>(y + j, ys, x + k0, cols, n, weights + j * cols + k0, cols, rows,
                              smaller(kTileCols, w.cols - k0), k0 == 0);
        }
        return;
    }
    alignas(64) float tile[kTileRows * kTileCols];
    for (int k0 = 0; k0 < w.cols; k0 += kTileCols) {
        const int len = smaller(kTileCols, w.cols - k0);
        for (int j0 = row_begin; j0 < row_end; j0 += kTileRows) {
            const int rows = smaller(kTileRows, row_end - j0);
            for (int j = 0; j < rows; ++j)
                widen<W>(tile + j * kTileCols, weights + (j0 + j) * cols + k0, len);
            float_tile<F32>(y + j0, ys, x + k0, cols, n, tile, kTileCols, rows, len, k0 == 0);
        }
    }
}

void float_rows(float* y, const float* x, int n, const WeightMatrix& w, int row_begin,
                int row_end) {
    if (w.dtype == WeightDtype::BF16)
        float_rows_of<Bf16>(y, x, n, w, row_begin, row_end);
    else
        float_rows_of<F16>(y, x, n, w, row_begin, row_end);
}

// y = x · Wᵀ for a bf16 W by bf16 dot products (AVX-512 BF16, Arm BFDOT): per tile of columns
// and group of rows of x, the activations are rounded to bf16 once (round(out, x, len), zero
// padding to the instruction's width), then every row of W in the chunk is multiplied by them
// (block_for(r, c): the r × c block of bf16 x rows times W rows). f16 weights take the f32 FMAs.
template <int RowsOfX, typename Round, typename BlockFor>
void bf16_dot_rows(float* y, const float* x, int n, const WeightMatrix& w, int row_begin,
                   int row_end, const Round& round, const BlockFor& block_for) {
    if (w.dtype != WeightDtype::BF16) return float_rows_of<F16>(y, x, n, w, row_begin, row_end);
    const auto* weights = static_cast<const uint16_t*>(w.data);
    const size_t cols = static_cast<size_t>(w.cols), ys = static_cast<size_t>(w.rows);
    alignas(64) uint16_t xb[RowsOfX * kTileCols];
    for (int k0 = 0; k0 < w.cols; k0 += kTileCols) {
        const int len = smaller(kTileCols, w.cols - k0);
        for (int i = 0; i < n; i += RowsOfX) {
            const int r = smaller(RowsOfX, n - i);
            for (int t = 0; t < r; ++t) round(xb + t * kTileCols, x + (i + t) * cols + k0, len);
            for_each_register_block<RowsOfX, kRowsOfW>(
                y + i * ys, ys, r, row_begin, row_end, k0 == 0,
                [&](float* out, int, int j, int, int c) {
                    block_for(r, c)(out, xb, kTileCols, weights + j * cols + k0, cols, len);
                });
        }
    }
}

// y = x · Wᵀ for a Q8_0 W and quantised activations: block_for(r, c) gives the r × c register
// block (RowsOfX × RowsOfW at most); the rows of W are read once, and prefetched while the first
// group of rows of x is computed.
template <int RowsOfX, int RowsOfW, typename BlockFor>
void q8_0_rows_of(float* y, const QuantisedRows& x, int n, const WeightMatrix& w, int row_begin,
                  int row_end, const BlockFor& block_for) {
    const int blocks = w.cols / kBlock;
    const size_t row_bytes = static_cast<size_t>(blocks) * kBlockBytes;
    const size_t xs = static_cast<size_t>(w.cols), ys = static_cast<size_t>(w.rows);
    const auto* weights = static_cast<const uint8_t*>(w.data);
    for_each_register_block<RowsOfX, RowsOfW>(
        y, ys, n, row_begin, row_end, true, [&](float* out, int i, int j, int r, int c) {
            block_for(r, c)(out, x.quants + i * xs, x.scales + i * (xs / kBlock), xs, xs / kBlock,
                            weights + j * row_bytes, row_bytes, blocks, i == 0);
        });
}
