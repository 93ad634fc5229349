/* The kernels of mirc merge's elementwise engine (compiler/merge/elementwise.py):
 *
 * - evaluate(): a compiled elementwise program (loads of stored inputs, float32 subtractions,
 *   products and fused multiply-adds, a store) run over a chunk a block of BLOCK elements at a
 *   time, so that every intermediate stays in the CPU's first cache, where numpy would make a
 *   pass over memory per operation. float16 is converted by the F16C instructions
 *   (VCVTPH2PS / VCVTPS2PH), which torch converts with too: rounding to nearest even, NaNs
 *   quiet with their payload kept (its top bits when narrowing). numpy's own float16 casts run
 *   one element at a time. x86-64 with AVX2, FMA and F16C only (fused() says whether);
 *   elsewhere mirc runs the same programs in numpy.
 * - fma(): x * y + z with one rounding over whole arrays, as torch's lerp and addcmul compute
 *   it, for numpy's runs of programs: the FMA instructions, or C's fmaf (also one rounding).
 *
 * Both release the interpreter lock while they compute, so that the engine's worker threads
 * run in parallel.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define KERNELS_X86 1
#endif

/* elementwise.Op */
enum {
    LOAD_F16,
    LOAD_BF16,
    LOAD_F32,
    LOAD_F64,
    SUB,
    MUL,
    FMA,
    ZERO,
    STORE_F16,
    STORE_F32,
    OPS
};

#define ABI 2                /* elementwise.ABI: the opcodes and evaluate()'s arguments */
#define MAX_REGISTERS 32     /* elementwise.MAX_REGISTERS */
#define MAX_INPUTS 32        /* a load's result is a register: no more inputs than registers */
#define MAX_INSTRUCTIONS 256 /* elementwise.MAX_INSTRUCTIONS */
#define BLOCK 512            /* elements: 32 blocks of float32 are 64 KB */

typedef struct {
    int32_t op, dst, a, b, c;
} Instruction;

static const Py_ssize_t WIDTH[OPS] = {2, 2, 4, 8, 0, 0, 0, 0, 2, 4};

static void
fma_scalar(const float *x, float y, const float *z, float *out, Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        out[i] = fmaf(x[i], y, z[i]);
    }
}

#ifdef KERNELS_X86

#define TARGET __attribute__((target("avx2,fma,f16c")))
#define ROUND_EVEN (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* Whether the CPU (and the OS, for AVX state) runs the TARGET code. F16C is read from CPUID
 * (leaf 1, ECX bit 29): __builtin_cpu_supports knows it only in recent compilers. */
static int
detect_avx2_fma_f16c(void)
{
    unsigned int eax, ebx, ecx, edx;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        return 0;
    }
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
}

TARGET static void
fma_avx2(const float *x, float y, const float *z, float *out, Py_ssize_t count)
{
    __m256 factor = _mm256_set1_ps(y);
    Py_ssize_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 sum = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), factor, _mm256_loadu_ps(z + i));
        _mm256_storeu_ps(out + i, sum);
    }
    fma_scalar(x + i, y, z + i, out + i, count - i);
}

/* One block of ``count`` (at most BLOCK) elements: each instruction over the whole block, in
 * ``registers``; ``inputs`` and ``out`` point at the block's first element. */
TARGET static void
run_block(const Instruction *code, Py_ssize_t length, const float *constants,
          const char *const *inputs, char *out, Py_ssize_t count,
          float (*registers)[BLOCK])
{
    for (Py_ssize_t k = 0; k < length; k++) {
        const Instruction *in = &code[k];
        float *dst = registers[in->dst];
        Py_ssize_t i = 0;
        switch (in->op) {
        case LOAD_F16: {
            const uint16_t *src = (const uint16_t *)inputs[in->a];
            for (; i + 8 <= count; i += 8) {
                __m128i half = _mm_loadu_si128((const __m128i *)(src + i));
                _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(half));
            }
            for (; i < count; i++) {
                dst[i] = _cvtsh_ss(src[i]);
            }
            break;
        }
        case LOAD_BF16: {
            const uint16_t *src = (const uint16_t *)inputs[in->a];
            for (; i + 8 <= count; i += 8) {
                __m256i words = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
                _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(words, 16));
            }
            for (; i < count; i++) {
                uint32_t word = (uint32_t)src[i] << 16;
                memcpy(dst + i, &word, sizeof word);
            }
            break;
        }
        case LOAD_F32:
            memcpy(dst, inputs[in->a], (size_t)count * sizeof(float));
            break;
        case LOAD_F64: {
            const double *src = (const double *)inputs[in->a];
            for (; i + 4 <= count; i += 4) {
                _mm_storeu_ps(dst + i, _mm256_cvtpd_ps(_mm256_loadu_pd(src + i)));
            }
            for (; i < count; i++) {
                dst[i] = (float)src[i];
            }
            break;
        }
        case SUB: {
            const float *a = registers[in->a], *b = registers[in->b];
            for (; i + 8 <= count; i += 8) {
                __m256 difference = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
                _mm256_storeu_ps(dst + i, difference);
            }
            for (; i < count; i++) {
                dst[i] = a[i] - b[i];
            }
            break;
        }
        case MUL: {
            const float *a = registers[in->a];
            const float factor = constants[in->b];
            __m256 factors = _mm256_set1_ps(factor);
            for (; i + 8 <= count; i += 8) {
                _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), factors));
            }
            for (; i < count; i++) {
                dst[i] = a[i] * factor;
            }
            break;
        }
        case FMA:
            fma_avx2(registers[in->a], constants[in->b], registers[in->c], dst, count);
            break;
        case ZERO:
            memset(dst, 0, (size_t)count * sizeof(float));
            break;
        case STORE_F16: {
            const float *a = registers[in->a];
            uint16_t *half = (uint16_t *)out;
            for (; i + 8 <= count; i += 8) {
                __m128i bits = _mm256_cvtps_ph(_mm256_loadu_ps(a + i), ROUND_EVEN);
                _mm_storeu_si128((__m128i *)(half + i), bits);
            }
            for (; i < count; i++) {
                half[i] = _cvtss_sh(a[i], ROUND_EVEN);
            }
            break;
        }
        case STORE_F32:
            memcpy(out, registers[in->a], (size_t)count * sizeof(float));
            break;
        }
    }
}

TARGET static void
run_program(const Instruction *code, Py_ssize_t length, const float *constants,
            const char *const *inputs, Py_ssize_t ninputs, const Py_ssize_t *widths, char *out,
            Py_ssize_t out_width, Py_ssize_t count, float (*registers)[BLOCK])
{
    const char *at[MAX_INPUTS];
    for (Py_ssize_t start = 0; start < count; start += BLOCK) {
        Py_ssize_t block = count - start < BLOCK ? count - start : BLOCK;
        for (Py_ssize_t j = 0; j < ninputs; j++) {
            at[j] = inputs[j] + start * widths[j];
        }
        run_block(code, length, constants, at, out + start * out_width, block, registers);
    }
}

#else

static int
detect_avx2_fma_f16c(void)
{
    return 0;
}

#endif

static int fused_cpu; /* detect_avx2_fma_f16c(), once, as the module loads */

static void
fused_multiply_add(const float *x, float y, const float *z, float *out, Py_ssize_t count)
{
#ifdef KERNELS_X86
    if (fused_cpu) {
        fma_avx2(x, y, z, out, count);
        return;
    }
#endif
    fma_scalar(x, y, z, out, count);
}

/* Checks a program against its operands before it runs: every opcode, register, input and
 * constant in range, no register read before an instruction writes it, one store and last,
 * every input read at one width and holding ``count`` elements, the output too. Sets a Python
 * error and returns 0 otherwise; fills ``widths``, ``out_width`` and ``registers`` (how many
 * the program writes). */
static int
check_program(const Instruction *code, Py_ssize_t length, Py_ssize_t nconstants,
              const Py_buffer *inputs, Py_ssize_t ninputs, const Py_buffer *out, Py_ssize_t count,
              Py_ssize_t *widths, Py_ssize_t *out_width, Py_ssize_t *registers)
{
    uint32_t written = 0; /* a bit per register */
    *registers = 0;
    for (Py_ssize_t j = 0; j < ninputs; j++) {
        widths[j] = 0;
    }
    if (length == 0) {
        PyErr_SetString(PyExc_ValueError, "the program is empty");
        return 0;
    }
#define REGISTER(r) ((r) >= 0 && (r) < MAX_REGISTERS && (written >> (r) & 1u))
    for (Py_ssize_t k = 0; k < length; k++) {
        const Instruction *in = &code[k];
        int op = in->op, store = op == STORE_F16 || op == STORE_F32;
        int bad = op < 0 || op >= OPS || store != (k == length - 1)
                  || (!store && (in->dst < 0 || in->dst >= MAX_REGISTERS));
        switch (bad ? -1 : op) {
        case LOAD_F16:
        case LOAD_BF16:
        case LOAD_F32:
        case LOAD_F64:
            bad = in->a < 0 || in->a >= ninputs
                  || (widths[in->a] != 0 && widths[in->a] != WIDTH[op]);
            if (!bad) {
                widths[in->a] = WIDTH[op];
            }
            break;
        case SUB:
            bad = !REGISTER(in->a) || !REGISTER(in->b);
            break;
        case MUL:
            bad = !REGISTER(in->a) || in->b < 0 || in->b >= nconstants;
            break;
        case FMA:
            bad = !REGISTER(in->a) || in->b < 0 || in->b >= nconstants || !REGISTER(in->c);
            break;
        case STORE_F16:
        case STORE_F32:
            bad = !REGISTER(in->a);
            break;
        }
        if (bad) {
            PyErr_Format(PyExc_ValueError, "instruction %zd of the program is malformed", k);
            return 0;
        }
        if (!store) {
            written |= 1u << in->dst;
            *registers = in->dst + 1 > *registers ? in->dst + 1 : *registers;
        }
    }
#undef REGISTER
    for (Py_ssize_t j = 0; j < ninputs; j++) {
        if (widths[j] == 0) {
            PyErr_Format(PyExc_ValueError, "input %zd is not read by the program", j);
            return 0;
        }
        if (count > inputs[j].len / widths[j]) {
            PyErr_Format(PyExc_ValueError, "input %zd holds fewer than %zd elements", j, count);
            return 0;
        }
    }
    *out_width = WIDTH[code[length - 1].op];
    if (count > out->len / *out_width) {
        PyErr_Format(PyExc_ValueError, "the output holds fewer than %zd elements", count);
        return 0;
    }
    return 1;
}

/* evaluate(code, constants, inputs, out, count). The program and its constants are copied
 * before they are checked, so that a caller's thread cannot change them in between. ``out``
 * must not overlap an input (mirc's never does). */
static PyObject *
kernels_evaluate(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer code, constants, out;
    PyObject *sequence;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "y*y*O!w*n:evaluate", &code, &constants, &PyTuple_Type,
                          &sequence, &out, &count)) {
        return NULL;
    }
    Instruction program[MAX_INSTRUCTIONS];
    float values[MAX_INSTRUCTIONS];
    Py_buffer inputs[MAX_INPUTS];
    const char *starts[MAX_INPUTS];
    Py_ssize_t ninputs = 0, widths[MAX_INPUTS] = {0}, out_width = 0, used = 0;
    Py_ssize_t length = code.len / (Py_ssize_t)sizeof(Instruction);
    Py_ssize_t nconstants = constants.len / (Py_ssize_t)sizeof(float);
    float(*registers)[BLOCK] = NULL;
    int ok = fused_cpu;
    if (!ok) {
        PyErr_SetString(PyExc_RuntimeError, "this CPU lacks AVX2, FMA or F16C");
    }
    else if (PyTuple_GET_SIZE(sequence) > MAX_INPUTS || count < 0
             || code.len % (Py_ssize_t)sizeof(Instruction) != 0 || length > MAX_INSTRUCTIONS
             || constants.len % (Py_ssize_t)sizeof(float) != 0 || nconstants > MAX_INSTRUCTIONS) {
        PyErr_SetString(PyExc_ValueError, "evaluate(code, constants, inputs, out, count): bad sizes");
        ok = 0;
    }
    if (ok) {
        memcpy(program, code.buf, (size_t)code.len);
        memcpy(values, constants.buf, (size_t)constants.len);
    }
    while (ok && ninputs < PyTuple_GET_SIZE(sequence)) {
        PyObject *item = PyTuple_GET_ITEM(sequence, ninputs);
        ok = PyObject_GetBuffer(item, &inputs[ninputs], PyBUF_C_CONTIGUOUS) == 0;
        if (ok) {
            starts[ninputs] = (const char *)inputs[ninputs].buf;
            ninputs++; /* taken: released below */
        }
    }
    if (ok) {
        ok = check_program(program, length, nconstants, inputs, ninputs, &out, count, widths,
                           &out_width, &used);
    }
    if (ok && used > 0) {
        registers = PyMem_RawMalloc((size_t)used * sizeof *registers);
        if (registers == NULL) {
            PyErr_NoMemory();
            ok = 0;
        }
    }
#ifdef KERNELS_X86
    if (ok) {
        Py_BEGIN_ALLOW_THREADS
        run_program(program, length, values, starts, ninputs, widths, (char *)out.buf, out_width,
                    count, registers);
        Py_END_ALLOW_THREADS
    }
#endif
    PyMem_RawFree(registers);
    for (Py_ssize_t j = 0; j < ninputs; j++) {
        PyBuffer_Release(&inputs[j]);
    }
    PyBuffer_Release(&code);
    PyBuffer_Release(&constants);
    PyBuffer_Release(&out);
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
kernels_fused(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(unused))
{
    return PyBool_FromLong(fused_cpu);
}

static PyMethodDef kernels_methods[] = {
    {"evaluate", kernels_evaluate, METH_VARARGS,
     "evaluate(code, constants, inputs, out, count): run an elementwise program over count "
     "elements of the input buffers, the result stored in out."},
    {"fma", kernels_fma, METH_VARARGS,
     "fma(x, y, z, out): out = x * y + z with one rounding, for float32 arrays x, z, out and "
     "a float y; out may be x or z."},
    {"fused", kernels_fused, METH_NOARGS,
     "fused(): whether this CPU runs evaluate (x86-64 with AVX2, FMA and F16C)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernels_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_kernels",
    .m_doc = "mirc merge's elementwise programs (F16C, FMA) and fused multiply-add over whole "
             "buffers, without the interpreter lock.",
    .m_size = 0,
    .m_methods = kernels_methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    fused_cpu = detect_avx2_fma_f16c();
    PyObject *module = PyModule_Create(&kernels_module);
    if (module != NULL && PyModule_AddIntConstant(module, "ABI", ABI) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
