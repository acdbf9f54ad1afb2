// Part of gen_ggml_golden.c (see there for how to build): llama.cpp's own
// repacking of Q4_0 / Q4_K weights into 8-row interleaved blocks and its
// x86 batch-1 kernels for them, behind two C entry points.
//
// repack.cpp is included (not linked) because the repack functions are
// static there; the link uses --gc-sections so the rest of it, which needs
// the whole CPU backend, is dropped.
#include "ggml-cpu/repack.cpp"

#include <vector>

// ggml.c's definition, which the repack functions call.
extern "C" int64_t ggml_nrows(const struct ggml_tensor * t) {
    return t->ne[1] * t->ne[2] * t->ne[3];
}

template <typename block, int qk, ggml_type wt, ggml_type at>
static void gemv8(int k, const void * w, const void * act, float * out) {
    const size_t bytes = 8 * (k / qk) * sizeof(block);
    std::vector<uint8_t> packed(bytes);
    struct ggml_tensor t = {};
    t.type = wt;
    t.ne[0] = k; t.ne[1] = 8; t.ne[2] = 1; t.ne[3] = 1;
    t.data = packed.data();
    // What the CPU_REPACK buffer does when llama.cpp loads the tensor.
    if (ggml::cpu::repack::repack<block, 8, 8>(&t, w, bytes) != 0) abort();
    // What forward_mul_mat_one_chunk calls for one activation row.
    ggml::cpu::repack::gemv<block, 8, 8, at>(k, out, 8, packed.data(), act, 1, 8);
}

extern "C" void golden_gemv_q4_0(int k, const void * w, const void * act, float * out) {
    gemv8<block_q4_0, QK4_0, GGML_TYPE_Q4_0, GGML_TYPE_Q8_0>(k, w, act, out);
}

extern "C" void golden_gemv_q4_K(int k, const void * w, const void * act, float * out) {
    gemv8<block_q4_K, QK_K, GGML_TYPE_Q4_K, GGML_TYPE_Q8_K>(k, w, act, out);
}
