/* The two things mirc merge's numpy engine needs and numpy lacks, over whole buffers:
 *
 * - float16 <-> float32 conversion with the CPU's F16C instructions. numpy's own float16
 *   casts convert one element at a time; torch converts with these same instructions
 *   (VCVTPH2PS / VCVTPS2PH) but costs a second of import. Rounding is to nearest even; NaNs
 *   come out quiet with their payload kept (its top bits when narrowing), as the instructions
 *   (and so torch) make them. On a CPU without F16C, or a build not for x86-64, f16c() is
 *   false and mirc converts with numpy operations instead (compiler/merge/floats.py).
 * - a fused multiply-add, x * y + z with one rounding, as torch's lerp and addcmul compute it:
 *   the FMA instructions where the CPU has them, C's fmaf (also one rounding) elsewhere.
 *
 * Each call releases the interpreter lock while it runs, so that the engine's worker threads
 * convert and compute in parallel.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KERNELS_X86 1
#endif

#ifdef KERNELS_X86

__attribute__((target("avx,f16c"))) static void
widen_f16c(const uint16_t *src, float *dst, Py_ssize_t count)
{
    Py_ssize_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m128i low = _mm_loadu_si128((const __m128i *)(src + i));
        __m128i high = _mm_loadu_si128((const __m128i *)(src + i + 8));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(low));
        _mm256_storeu_ps(dst + i + 8, _mm256_cvtph_ps(high));
    }
    if (i < count) {
        uint16_t in[16] = {0};
        float out[16];
        memcpy(in, src + i, (size_t)(count - i) * sizeof(uint16_t));
        _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)in)));
        _mm256_storeu_ps(out + 8, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + 8))));
        memcpy(dst + i, out, (size_t)(count - i) * sizeof(float));
    }
}

#define ROUND_EVEN (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

__attribute__((target("avx,f16c"))) static void
narrow_f16c(const float *src, uint16_t *dst, Py_ssize_t count)
{
    Py_ssize_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m256 low = _mm256_loadu_ps(src + i);
        __m256 high = _mm256_loadu_ps(src + i + 8);
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(low, ROUND_EVEN));
        _mm_storeu_si128((__m128i *)(dst + i + 8), _mm256_cvtps_ph(high, ROUND_EVEN));
    }
    if (i < count) {
        float in[16] = {0};
        uint16_t out[16];
        memcpy(in, src + i, (size_t)(count - i) * sizeof(float));
        _mm_storeu_si128((__m128i *)out, _mm256_cvtps_ph(_mm256_loadu_ps(in), ROUND_EVEN));
        _mm_storeu_si128((__m128i *)(out + 8), _mm256_cvtps_ph(_mm256_loadu_ps(in + 8), ROUND_EVEN));
        memcpy(dst + i, out, (size_t)(count - i) * sizeof(uint16_t));
    }
}

__attribute__((target("avx2,fma"))) static void
fma_avx2(const float *x, float y, const float *z, float *out, Py_ssize_t count)
{
    __m256 factor = _mm256_set1_ps(y);
    Py_ssize_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 product = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(product, factor, _mm256_loadu_ps(z + i)));
    }
    for (; i < count; i++) {
        out[i] = fmaf(x[i], y, z[i]);
    }
}

static int
has_f16c(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
}

static int
has_fma(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

#else

static int
has_f16c(void)
{
    return 0;
}

#endif

static void
fused_multiply_add(const float *x, float y, const float *z, float *out, Py_ssize_t count)
{
#ifdef KERNELS_X86
    if (has_fma()) {
        fma_avx2(x, y, z, out, count);
        return;
    }
#endif
    for (Py_ssize_t i = 0; i < count; i++) {
        out[i] = fmaf(x[i], y, z[i]);
    }
}

/* Checks the two buffers' lengths (``width`` bytes of destination per source byte, over two)
 * and the CPU; sets a Python error and returns 0 when the conversion cannot run. */
static int
check(const Py_buffer *src, const Py_buffer *dst, Py_ssize_t src_item, Py_ssize_t dst_item)
{
    if (!has_f16c()) {
        PyErr_SetString(PyExc_RuntimeError, "this CPU has no F16C instructions");
        return 0;
    }
    if (src->len % src_item != 0 || dst->len / dst_item != src->len / src_item
        || dst->len % dst_item != 0) {
        PyErr_Format(PyExc_ValueError,
                     "buffers of %zd and %zd bytes do not hold the same number of elements",
                     src->len, dst->len);
        return 0;
    }
    return 1;
}

static PyObject *
kernels_widen(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer src, dst;
    if (!PyArg_ParseTuple(args, "y*w*:widen", &src, &dst)) {
        return NULL;
    }
    int ok = check(&src, &dst, 2, 4);
#ifdef KERNELS_X86
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        widen_f16c((const uint16_t *)src.buf, (float *)dst.buf, src.len / 2);
        Py_END_ALLOW_THREADS
    }
#endif
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
kernels_narrow(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer src, dst;
    if (!PyArg_ParseTuple(args, "y*w*:narrow", &src, &dst)) {
        return NULL;
    }
    int ok = check(&src, &dst, 4, 2);
#ifdef KERNELS_X86
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        narrow_f16c((const float *)src.buf, (uint16_t *)dst.buf, src.len / 4);
        Py_END_ALLOW_THREADS
    }
#endif
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
kernels_fma(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer x, z, out;
    float y;
    if (!PyArg_ParseTuple(args, "y*fy*w*:fma", &x, &y, &z, &out)) {
        return NULL;
    }
    int ok = x.len % 4 == 0 && z.len == x.len && out.len == x.len;
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        fused_multiply_add((const float *)x.buf, y, (const float *)z.buf, (float *)out.buf,
                           x.len / 4);
        Py_END_ALLOW_THREADS
    }
    else {
        PyErr_Format(PyExc_ValueError,
                     "buffers of %zd, %zd and %zd bytes are not float32 arrays of one length",
                     x.len, z.len, out.len);
    }
    PyBuffer_Release(&x);
    PyBuffer_Release(&z);
    PyBuffer_Release(&out);
    if (!ok) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
kernels_f16c(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(unused))
{
    return PyBool_FromLong(has_f16c());
}

static PyMethodDef kernels_methods[] = {
    {"widen", kernels_widen, METH_VARARGS,
     "widen(src, dst): the float16 elements of src as float32 in dst (F16C only)."},
    {"narrow", kernels_narrow, METH_VARARGS,
     "narrow(src, dst): the float32 elements of src rounded to nearest even as float16 in dst "
     "(F16C only)."},
    {"fma", kernels_fma, METH_VARARGS,
     "fma(x, y, z, out): out = x * y + z with one rounding, for float32 arrays x, z, out and "
     "a float y; out may be x or z."},
    {"f16c", kernels_f16c, METH_NOARGS,
     "f16c(): whether this CPU has the F16C instructions that widen and narrow use."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernels_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_kernels",
    .m_doc = "float16 conversion (F16C) and fused multiply-add over whole buffers, without the "
             "interpreter lock.",
    .m_size = 0,
    .m_methods = kernels_methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    return PyModule_Create(&kernels_module);
}
