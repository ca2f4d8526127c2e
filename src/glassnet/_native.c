/* Fused element-wise kernels: one pass over memory where NumPy needs several calls.
 *
 * Optional accelerator. Every kernel here has a NumPy twin in the Python code (the readable,
 * reference version) and tests check that both give the same numbers. The kernels do the
 * same float operations in the same order as the NumPy code, in the array's own precision,
 * with FMA contraction off (-ffp-contract=off), so the optimizer updates are bit-identical
 * (but for subnormal results, stored as 0: see "optimizer updates").
 *
 * Arrays are passed as Python buffers (NumPy arrays): C-contiguous, float32 ('f') or
 * float64 ('d'), all of one dtype; anything else raises TypeError and the caller falls back
 * to NumPy. No NumPy headers are needed to build this file.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
/* One binary for every x86-64 CPU, AVX2 loops where the CPU has them (glibc ifunc). */
#define MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define MULTIVERSION
#endif

#define MAX_BUFS 12

typedef struct {
    Py_buffer views[MAX_BUFS];
    int count;
    char dtype; /* 'f' or 'd' */
} Buffers;

static void release(Buffers *b) {
    for (int i = 0; i < b->count; i++) PyBuffer_Release(&b->views[i]);
    b->count = 0;
}

/* Acquire `obj` as a contiguous float buffer of the call's dtype with `n` items (n < 0: any
 * length, returned in *n_out), writable if the kernel writes it (names of inputs start with
 * a lowercase letter, outputs are marked by a leading '>').
 * Returns the data pointer, or NULL with an exception set. */
static void *acquire(Buffers *b, PyObject *obj, const char *name, Py_ssize_t n,
                     Py_ssize_t *n_out) {
    if (b->count == MAX_BUFS) {
        PyErr_SetString(PyExc_RuntimeError, "glassnet._native: too many buffers");
        return NULL;
    }
    Py_buffer *view = &b->views[b->count];
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT;
    if (name[0] == '>') { flags |= PyBUF_WRITABLE; name++; }
    if (PyObject_GetBuffer(obj, view, flags) < 0) return NULL;
    b->count++;
    const char *fmt = view->format ? view->format : "B";
    if (fmt[0] == '<' || fmt[0] == '=' || fmt[0] == '@') fmt++;
    char code = (fmt[0] == 'f' || fmt[0] == 'd') && fmt[1] == '\0' ? fmt[0] : 0;
    if (!code || (b->dtype && code != b->dtype)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a %s buffer, got format '%s'", name,
                     b->dtype == 'd' ? "float64" : "float32 or float64", view->format);
        return NULL;
    }
    b->dtype = code;
    Py_ssize_t items = view->len / view->itemsize;
    if (n >= 0 && items != n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd values, got %zd", name, n, items);
        return NULL;
    }
    if (n_out) *n_out = items;
    return view->buf;
}

/* ---------------------------------------------------------------- optimizer updates --- */

/* Optimizer slots of weights whose gradient stays zero (border pixels, dead ReLUs) decay
 * geometrically (Adam's m by beta_1 a step) into subnormal floats, which x86 computes in
 * microcode: on Fashion-MNIST 7 % of m is subnormal after an epoch, and the Adam pass takes
 * 93 us instead of 41. The updates therefore run with flush-to-zero and
 * denormals-are-zero, as TensorFlow's CPU kernels do: a subnormal input reads as 0 and a
 * subnormal result is stored as 0 (a change below 1.2e-38, float32's smallest normal).
 * The caller's floating-point mode is restored before returning. Other CPUs: unchanged. */
#if defined(__x86_64__) || defined(_M_X64) || (defined(__SSE2__) && defined(__i386__))
#include <xmmintrin.h>
#define FLUSH_SUBNORMALS_BEGIN                                                             \
    unsigned int saved_csr_ = _mm_getcsr();                                                \
    _mm_setcsr(saved_csr_ | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
#define FLUSH_SUBNORMALS_END _mm_setcsr(saved_csr_);
#define FLUSHES_SUBNORMALS 1
#else
#define FLUSH_SUBNORMALS_BEGIN
#define FLUSH_SUBNORMALS_END
#define FLUSHES_SUBNORMALS 0
#endif

/* Keras 3 Adam, as optimizers/adaptive.py Adam.update_step:
 *   m += (g - m) * c1;  v += (g*g - v) * c2;  [vhat = max(vhat, v); v = vhat]
 *   w -= (m / (sqrt(v) + eps)) * alpha                                                   */
#define ADAM_LOOP(T, SQRT)                                                                 \
    MULTIVERSION static void adam_##T(Py_ssize_t n, T *w, const T *g, T *m, T *v, T *vh,  \
                                      T c1, T c2, T alpha, T eps) {                       \
        for (Py_ssize_t i = 0; i < n; i++) {                                               \
            T gi = g[i];                                                                   \
            T mi = m[i] + (gi - m[i]) * c1;                                                \
            T vi = v[i] + (gi * gi - v[i]) * c2;                                           \
            m[i] = mi;                                                                     \
            v[i] = vi;                                                                     \
            if (vh) { vi = vh[i] > vi || vh[i] != vh[i] ? vh[i] : vi; vh[i] = vi; }        \
            w[i] -= (mi / (SQRT(vi) + eps)) * alpha;                                       \
        }                                                                                  \
    }
ADAM_LOOP(float, sqrtf)
ADAM_LOOP(double, sqrt)

static PyObject *py_adam(PyObject *self, PyObject *args) {
    PyObject *ow, *og, *om, *ov, *ovh;
    double c1, c2, alpha, eps;
    if (!PyArg_ParseTuple(args, "OOOOOdddd:adam", &ow, &og, &om, &ov, &ovh, &c1, &c2, &alpha,
                          &eps))
        return NULL;
    Buffers b = {.count = 0, .dtype = 0};
    Py_ssize_t n;
    void *w = acquire(&b, ow, ">w", -1, &n), *g = w ? acquire(&b, og, "g", n, NULL) : NULL;
    void *m = g ? acquire(&b, om, ">m", n, NULL) : NULL;
    void *v = m ? acquire(&b, ov, ">v", n, NULL) : NULL;
    void *vh = NULL;
    if (v && ovh != Py_None) vh = acquire(&b, ovh, ">vhat", n, NULL);
    if (!v || (ovh != Py_None && !vh)) { release(&b); return NULL; }
    FLUSH_SUBNORMALS_BEGIN
    if (b.dtype == 'f')
        adam_float(n, w, g, m, v, vh, (float)c1, (float)c2, (float)alpha, (float)eps);
    else
        adam_double(n, w, g, m, v, vh, c1, c2, alpha, eps);
    FLUSH_SUBNORMALS_END
    release(&b);
    Py_RETURN_NONE;
}

/* Keras 3 SGD, as optimizers/sgd.py SGD.update_step (gl = g * lr):
 *   plain: w -= gl;  momentum: v = v * mu - gl, w += v;  nesterov: w = (w - gl) + v * mu */
#define SGD_LOOP(T)                                                                        \
    MULTIVERSION static void sgd_##T(Py_ssize_t n, T *w, const T *g, T *v, T lr, T mu,    \
                                     int nesterov) {                                      \
        if (!v) {                                                                          \
            for (Py_ssize_t i = 0; i < n; i++) w[i] -= g[i] * lr;                          \
        } else if (nesterov) {                                                             \
            for (Py_ssize_t i = 0; i < n; i++) {                                           \
                T gl = g[i] * lr, vi = v[i] * mu - gl;                                     \
                v[i] = vi;                                                                 \
                w[i] = (w[i] - gl) + vi * mu;                                              \
            }                                                                              \
        } else {                                                                           \
            for (Py_ssize_t i = 0; i < n; i++) {                                           \
                T vi = v[i] * mu - g[i] * lr;                                              \
                v[i] = vi;                                                                 \
                w[i] += vi;                                                                \
            }                                                                              \
        }                                                                                  \
    }
SGD_LOOP(float)
SGD_LOOP(double)

static PyObject *py_sgd(PyObject *self, PyObject *args) {
    PyObject *ow, *og, *ov;
    double lr, mu;
    int nesterov;
    if (!PyArg_ParseTuple(args, "OOOddp:sgd", &ow, &og, &ov, &lr, &mu, &nesterov)) return NULL;
    Buffers b = {.count = 0, .dtype = 0};
    Py_ssize_t n;
    void *w = acquire(&b, ow, ">w", -1, &n), *g = w ? acquire(&b, og, "g", n, NULL) : NULL;
    void *v = NULL;
    if (g && ov != Py_None) v = acquire(&b, ov, ">v", n, NULL);
    if (!g || (ov != Py_None && !v)) { release(&b); return NULL; }
    FLUSH_SUBNORMALS_BEGIN
    if (b.dtype == 'f')
        sgd_float(n, w, g, v, (float)lr, (float)mu, nesterov);
    else
        sgd_double(n, w, g, v, lr, mu, nesterov);
    FLUSH_SUBNORMALS_END
    release(&b);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------- batch norm over a (N, C) batch --- */

/* Forward with the batch's statistics, as autograd/fused.py batch_norm_train, and the
 * layer's moving averages when given (BatchNormalization.call):
 *   mean = sum_i x / N;  d = x - mean;  var = sum_i d^2 / N
 *   inv_std = 1 / sqrt(var + eps);  xhat = d * inv_std;  y = xhat * gamma + beta
 * xhat is not stored: the backward pass recomputes it from x, mean and inv_std with the
 * same two operations (the same bits), which saves writing and keeping an array as large
 * as the batch per layer (a cold write costs more than the subtraction).                */
#define BN_FWD_LOOP(T, SQRT)                                                               \
    MULTIVERSION static void bn_forward_##T(Py_ssize_t rows, Py_ssize_t c, const T *x,    \
                                            const T *gamma, const T *beta, T eps, T *y,   \
                                            T *mean, T *var, T *inv_std,                  \
                                            T *moving_mean, T *moving_var,                \
                                            double momentum) {                            \
        T inv_n = (T)(1.0 / (double)rows);                                                 \
        memcpy(mean, x, c * sizeof(T));                                                    \
        for (Py_ssize_t i = 1; i < rows; i++)                                              \
            for (Py_ssize_t j = 0; j < c; j++) mean[j] += x[i * c + j];                    \
        for (Py_ssize_t j = 0; j < c; j++) { mean[j] *= inv_n; var[j] = 0; }               \
        for (Py_ssize_t i = 0; i < rows; i++)                                              \
            for (Py_ssize_t j = 0; j < c; j++) {                                           \
                T d = x[i * c + j] - mean[j];                                              \
                var[j] += d * d;                                                           \
            }                                                                              \
        for (Py_ssize_t j = 0; j < c; j++) {                                               \
            var[j] *= inv_n;                                                               \
            inv_std[j] = (T)1 / SQRT(var[j] + eps);                                        \
        }                                                                                  \
        if (moving_mean) {  /* moving = moving * momentum + (1 - momentum) * batch */      \
            T keep = (T)momentum, take = (T)(1.0 - momentum);                              \
            for (Py_ssize_t j = 0; j < c; j++) {                                           \
                moving_mean[j] = moving_mean[j] * keep + take * mean[j];                   \
                moving_var[j] = moving_var[j] * keep + take * var[j];                      \
            }                                                                              \
        }                                                                                  \
        for (Py_ssize_t i = 0; i < rows; i++)                                              \
            for (Py_ssize_t j = 0; j < c; j++) {                                           \
                T h = (x[i * c + j] - mean[j]) * inv_std[j];                               \
                if (gamma) h = h * gamma[j];                                               \
                if (beta) h = h + beta[j];                                                 \
                y[i * c + j] = h;                                                          \
            }                                                                              \
    }
BN_FWD_LOOP(float, sqrtf)
BN_FWD_LOOP(double, sqrt)

/* Backward, closed form (N rows per channel), xhat = (x - mean) * inv_std recomputed:
 *   sum_g = sum_i g;  sum_gx = sum_i g * xhat
 *   gx = ((g - sum_g / N) - xhat * (sum_gx / N)) * (gamma * inv_std)                    */
#define BN_BWD_LOOP(T)                                                                     \
    MULTIVERSION static void bn_backward_##T(Py_ssize_t rows, Py_ssize_t c, const T *g,   \
                                             const T *x, const T *mean,                   \
                                             const T *gamma, const T *inv_std, T *gx,     \
                                             T *sum_g, T *sum_gx, T *scale) {             \
        T inv_n = (T)(1.0 / (double)rows);                                                 \
        for (Py_ssize_t j = 0; j < c; j++) { sum_g[j] = 0; sum_gx[j] = 0; }                \
        for (Py_ssize_t i = 0; i < rows; i++)                                              \
            for (Py_ssize_t j = 0; j < c; j++) {                                           \
                T xhat = (x[i * c + j] - mean[j]) * inv_std[j];                            \
                sum_g[j] += g[i * c + j];                                                  \
                sum_gx[j] += g[i * c + j] * xhat;                                          \
            }                                                                              \
        if (!gx) return;                                                                   \
        for (Py_ssize_t j = 0; j < c; j++)                                                 \
            scale[j] = gamma ? gamma[j] * inv_std[j] : inv_std[j];                         \
        for (Py_ssize_t i = 0; i < rows; i++)                                              \
            for (Py_ssize_t j = 0; j < c; j++) {                                           \
                T xhat = (x[i * c + j] - mean[j]) * inv_std[j];                            \
                gx[i * c + j] = ((g[i * c + j] - sum_g[j] * inv_n)                         \
                                 - xhat * (sum_gx[j] * inv_n)) * scale[j];                 \
            }                                                                              \
    }
BN_BWD_LOOP(float)
BN_BWD_LOOP(double)

static PyObject *py_bn_forward(PyObject *self, PyObject *args) {
    PyObject *ox, *ogamma, *obeta, *oy, *omean, *ovar, *oinv, *omm = Py_None,
             *omv = Py_None;
    Py_ssize_t rows;
    double eps, momentum = 0.0;
    if (!PyArg_ParseTuple(args, "OnOOdOOOO|OOd:bn_forward", &ox, &rows, &ogamma, &obeta,
                          &eps, &oy, &omean, &ovar, &oinv, &omm, &omv, &momentum))
        return NULL;
    Buffers b = {.count = 0, .dtype = 0};
    Py_ssize_t n = 0, c = 0;
    void *x = acquire(&b, ox, "x", -1, &n);
    void *mean = x ? acquire(&b, omean, ">mean", -1, &c) : NULL;
    if (mean && (rows <= 0 || c <= 0 || n != rows * c)) {
        PyErr_SetString(PyExc_ValueError, "bn_forward: x must hold rows * channels values");
        mean = NULL;
    }
    void *var = mean ? acquire(&b, ovar, ">var", c, NULL) : NULL;
    void *inv = var ? acquire(&b, oinv, ">inv_std", c, NULL) : NULL;
    void *y = inv ? acquire(&b, oy, ">y", n, NULL) : NULL;
    void *gamma = NULL, *beta = NULL;
    int ok = y != NULL;
    if (ok && ogamma != Py_None) ok = (gamma = acquire(&b, ogamma, "gamma", c, NULL)) != NULL;
    if (ok && obeta != Py_None) ok = (beta = acquire(&b, obeta, "beta", c, NULL)) != NULL;
    void *mm = NULL, *mv = NULL;
    if (ok && omm != Py_None) {
        ok = (mm = acquire(&b, omm, ">moving_mean", c, NULL)) != NULL &&
             (mv = acquire(&b, omv, ">moving_variance", c, NULL)) != NULL;
    }
    if (!ok) { release(&b); return NULL; }
    if (b.dtype == 'f')
        bn_forward_float(rows, c, x, gamma, beta, (float)eps, y, mean, var, inv, mm, mv,
                         momentum);
    else
        bn_forward_double(rows, c, x, gamma, beta, eps, y, mean, var, inv, mm, mv, momentum);
    release(&b);
    Py_RETURN_NONE;
}

static PyObject *py_bn_backward(PyObject *self, PyObject *args) {
    PyObject *og, *ox, *omean, *ogamma, *oinv, *ogx, *osum_g, *osum_gx, *oscale;
    if (!PyArg_ParseTuple(args, "OOOOOOOOO:bn_backward", &og, &ox, &omean, &ogamma, &oinv,
                          &ogx, &osum_g, &osum_gx, &oscale))
        return NULL;
    Buffers b = {.count = 0, .dtype = 0};
    Py_ssize_t n = 0, c = 0;
    void *g = acquire(&b, og, "g", -1, &n);
    void *inv = g ? acquire(&b, oinv, "inv_std", -1, &c) : NULL;
    if (inv && (c <= 0 || n % c != 0)) {
        PyErr_SetString(PyExc_ValueError, "bn_backward: g must hold rows * channels values");
        inv = NULL;
    }
    void *x = inv ? acquire(&b, ox, "x", n, NULL) : NULL;
    void *mean = x ? acquire(&b, omean, "mean", c, NULL) : NULL;
    void *sum_g = mean ? acquire(&b, osum_g, ">sum_g", c, NULL) : NULL;
    void *sum_gx = sum_g ? acquire(&b, osum_gx, ">sum_gx", c, NULL) : NULL;
    void *scale = sum_gx ? acquire(&b, oscale, ">scale", c, NULL) : NULL;
    void *gamma = NULL, *gx = NULL;
    int ok = scale != NULL;
    if (ok && ogamma != Py_None) ok = (gamma = acquire(&b, ogamma, "gamma", c, NULL)) != NULL;
    if (ok && ogx != Py_None) ok = (gx = acquire(&b, ogx, ">gx", n, NULL)) != NULL;
    if (!ok) { release(&b); return NULL; }
    if (b.dtype == 'f')
        bn_backward_float(n / c, c, g, x, mean, gamma, inv, gx, sum_g, sum_gx, scale);
    else
        bn_backward_double(n / c, c, g, x, mean, gamma, inv, gx, sum_g, sum_gx, scale);
    release(&b);
    Py_RETURN_NONE;
}

/* Inference with the moving statistics, as autograd/fused.py batch_norm_inference:
 *   inv_std = 1 / sqrt(var + eps);  scale = gamma * inv_std;  shift = -mean * scale + beta
 *   y = x * scale + shift   (two roundings: FMA contraction is off)
 * `scale` (C values) is left for the caller's VJP.                                        */
#define BN_INF_LOOP(T, SQRT)                                                               \
    MULTIVERSION static void bn_inference_##T(Py_ssize_t n, Py_ssize_t c, const T *x,     \
                                              const T *gamma, const T *beta,              \
                                              const T *mean, const T *var, T eps, T *y,   \
                                              T *scale, T *shift) {                       \
        for (Py_ssize_t j = 0; j < c; j++) {                                               \
            T inv_std = (T)1 / SQRT(var[j] + eps);                                         \
            scale[j] = gamma ? gamma[j] * inv_std : inv_std;                               \
            shift[j] = -mean[j] * scale[j];                                                \
            if (beta) shift[j] = shift[j] + beta[j];                                       \
        }                                                                                  \
        for (Py_ssize_t i = 0; i < n; i += c)                                              \
            for (Py_ssize_t j = 0; j < c; j++) {                                           \
                T h = x[i + j] * scale[j];                                                 \
                y[i + j] = h + shift[j];                                                   \
            }                                                                              \
    }
BN_INF_LOOP(float, sqrtf)
BN_INF_LOOP(double, sqrt)

static PyObject *py_bn_inference(PyObject *self, PyObject *args) {
    PyObject *ox, *ogamma, *obeta, *omean, *ovar, *oy, *oscale, *oshift;
    double eps;
    if (!PyArg_ParseTuple(args, "OOOOOdOOO:bn_inference", &ox, &ogamma, &obeta, &omean, &ovar,
                          &eps, &oy, &oscale, &oshift))
        return NULL;
    Buffers b = {.count = 0, .dtype = 0};
    Py_ssize_t n = 0, c = 0;
    void *x = acquire(&b, ox, "x", -1, &n);
    void *mean = x ? acquire(&b, omean, "moving_mean", -1, &c) : NULL;
    if (mean && (c <= 0 || n % c != 0 || n == 0)) {
        PyErr_SetString(PyExc_ValueError, "bn_inference: x must hold rows * channels values");
        mean = NULL;
    }
    void *var = mean ? acquire(&b, ovar, "moving_variance", c, NULL) : NULL;
    void *y = var ? acquire(&b, oy, ">y", n, NULL) : NULL;
    void *scale = y ? acquire(&b, oscale, ">scale", c, NULL) : NULL;
    void *shift = scale ? acquire(&b, oshift, ">shift", c, NULL) : NULL;
    void *gamma = NULL, *beta = NULL;
    int ok = shift != NULL;
    if (ok && ogamma != Py_None) ok = (gamma = acquire(&b, ogamma, "gamma", c, NULL)) != NULL;
    if (ok && obeta != Py_None) ok = (beta = acquire(&b, obeta, "beta", c, NULL)) != NULL;
    if (!ok) { release(&b); return NULL; }
    if (b.dtype == 'f')
        bn_inference_float(n, c, x, gamma, beta, mean, var, (float)eps, y, scale, shift);
    else
        bn_inference_double(n, c, x, gamma, beta, mean, var, eps, y, scale, shift);
    release(&b);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ activations --- */

/* out = g * (y > 0): the ReLU derivative read from the output, as fused.py _relu_bwd; with
 * `colsum` (C values), also the bias gradient colsum = sum over rows of out, as
 * np.add.reduce(out, axis=0): rows added in order.                                        */
#define RELU_BWD_LOOP(T)                                                                   \
    MULTIVERSION static void relu_backward_##T(Py_ssize_t n, Py_ssize_t c, const T *g,    \
                                               const T *y, T *out, T *colsum) {           \
        if (!colsum) {                                                                     \
            for (Py_ssize_t i = 0; i < n; i++) out[i] = g[i] * (T)(y[i] > 0);              \
            return;                                                                        \
        }                                                                                  \
        for (Py_ssize_t j = 0; j < c; j++) {                                               \
            out[j] = g[j] * (T)(y[j] > 0);                                                 \
            colsum[j] = out[j];                                                            \
        }                                                                                  \
        for (Py_ssize_t i = c; i < n; i += c)                                              \
            for (Py_ssize_t j = 0; j < c; j++) {                                           \
                out[i + j] = g[i + j] * (T)(y[i + j] > 0);                                 \
                colsum[j] += out[i + j];                                                   \
            }                                                                              \
    }
RELU_BWD_LOOP(float)
RELU_BWD_LOOP(double)

static PyObject *py_relu_backward(PyObject *self, PyObject *args) {
    PyObject *og, *oy, *oout, *ocolsum = Py_None;
    if (!PyArg_ParseTuple(args, "OOO|O:relu_backward", &og, &oy, &oout, &ocolsum)) return NULL;
    Buffers b = {.count = 0, .dtype = 0};
    Py_ssize_t n, c = 0;
    void *g = acquire(&b, og, "g", -1, &n), *y = g ? acquire(&b, oy, "y", n, NULL) : NULL;
    void *out = y ? acquire(&b, oout, ">out", n, NULL) : NULL;
    void *colsum = NULL;
    if (out && ocolsum != Py_None) {
        colsum = acquire(&b, ocolsum, ">colsum", -1, &c);
        if (colsum && (c <= 0 || n % c != 0 || n == 0)) {
            PyErr_SetString(PyExc_ValueError, "relu_backward: g must hold rows * C values");
            colsum = NULL;
        }
    }
    if (!out || (ocolsum != Py_None && !colsum)) { release(&b); return NULL; }
    if (b.dtype == 'f')
        relu_backward_float(n, c, g, y, out, colsum);
    else
        relu_backward_double(n, c, g, y, out, colsum);
    release(&b);
    Py_RETURN_NONE;
}

/* z = max(z + bias, 0) in place, as fused.py dense: `z += bias` then `np.maximum(z, 0)`
 * (NaN stays NaN). */
#define BIAS_RELU_LOOP(T)                                                                  \
    MULTIVERSION static void bias_relu_##T(Py_ssize_t n, Py_ssize_t c, T *z,              \
                                           const T *bias) {                               \
        for (Py_ssize_t i = 0; i < n; i += c)                                              \
            for (Py_ssize_t j = 0; j < c; j++) {                                           \
                T v = z[i + j] + bias[j];                                                  \
                z[i + j] = v < 0 ? (T)0 : v;                                               \
            }                                                                              \
    }
BIAS_RELU_LOOP(float)
BIAS_RELU_LOOP(double)

static PyObject *py_bias_relu(PyObject *self, PyObject *args) {
    PyObject *oz, *obias;
    if (!PyArg_ParseTuple(args, "OO:bias_relu", &oz, &obias)) return NULL;
    Buffers b = {.count = 0, .dtype = 0};
    Py_ssize_t n, c = 0;
    void *z = acquire(&b, oz, ">z", -1, &n);
    void *bias = z ? acquire(&b, obias, "bias", -1, &c) : NULL;
    if (bias && (c <= 0 || n % c != 0 || n == 0)) {
        PyErr_SetString(PyExc_ValueError, "bias_relu: z must hold rows * C values");
        bias = NULL;
    }
    if (!bias) { release(&b); return NULL; }
    if (b.dtype == 'f')
        bias_relu_float(n, c, z, bias);
    else
        bias_relu_double(n, c, z, bias);
    release(&b);
    Py_RETURN_NONE;
}

/* Row-wise softmax of (N, K) values, as ops.softmax: e = exp(z - max z); out = e / sum e. */
#define SOFTMAX_LOOP(T, EXP)                                                               \
    static void softmax_rows_##T(Py_ssize_t rows, Py_ssize_t k, const T *z, T *out) {     \
        for (Py_ssize_t i = 0; i < rows; i++) {                                            \
            const T *zi = z + i * k;                                                       \
            T *oi = out + i * k, mx = zi[0], s = 0;                                        \
            for (Py_ssize_t j = 1; j < k; j++) mx = zi[j] > mx || zi[j] != zi[j] ? zi[j] : mx; \
            for (Py_ssize_t j = 0; j < k; j++) { oi[j] = EXP(zi[j] - mx); s += oi[j]; }    \
            for (Py_ssize_t j = 0; j < k; j++) oi[j] = oi[j] / s;                          \
        }                                                                                  \
    }
SOFTMAX_LOOP(float, expf)
SOFTMAX_LOOP(double, exp)

static PyObject *py_softmax_rows(PyObject *self, PyObject *args) {
    PyObject *oz, *oout;
    Py_ssize_t k;
    if (!PyArg_ParseTuple(args, "OnO:softmax_rows", &oz, &k, &oout)) return NULL;
    Buffers b = {.count = 0, .dtype = 0};
    Py_ssize_t n;
    void *z = acquire(&b, oz, "z", -1, &n);
    if (z && (k <= 0 || n % k != 0 || n == 0)) {
        PyErr_SetString(PyExc_ValueError, "softmax_rows: z must hold rows * k values");
        z = NULL;
    }
    void *out = z ? acquire(&b, oout, ">out", n, NULL) : NULL;
    if (!out) { release(&b); return NULL; }
    if (b.dtype == 'f')
        softmax_rows_float(n / k, k, z, out);
    else
        softmax_rows_double(n / k, k, z, out);
    release(&b);
    Py_RETURN_NONE;
}

/* ------------------------------------------- softmax cross-entropy, integer labels --- */

/* Per row, as fused.py softmax_cross_entropy (sparse):
 *   e = exp(z - max z);  s = sum e;  loss = -((z[label] - max z) - log s);  p = e / s   */
#define XENT_LOOP(T, EXP, LOG)                                                             \
    static void xent_forward_##T(Py_ssize_t rows, Py_ssize_t k, const T *z,               \
                                 const int64_t *labels, T *p, T *loss) {                  \
        for (Py_ssize_t i = 0; i < rows; i++) {                                            \
            const T *zi = z + i * k;                                                       \
            T *pi = p + i * k, mx = zi[0], s = 0;                                          \
            for (Py_ssize_t j = 1; j < k; j++) mx = zi[j] > mx || zi[j] != zi[j] ? zi[j] : mx; \
            for (Py_ssize_t j = 0; j < k; j++) { pi[j] = EXP(zi[j] - mx); s += pi[j]; }    \
            loss[i] = -((zi[labels[i]] - mx) - LOG(s));                                    \
            for (Py_ssize_t j = 0; j < k; j++) pi[j] = pi[j] / s;                          \
        }                                                                                  \
    }                                                                                      \
    /* gz = (p - onehot(label)) * g[row] */                                                \
    static void xent_backward_##T(Py_ssize_t rows, Py_ssize_t k, const T *p,              \
                                  const int64_t *labels, const T *g, T *gz) {             \
        for (Py_ssize_t i = 0; i < rows; i++) {                                            \
            T gi = g[i];                                                                   \
            for (Py_ssize_t j = 0; j < k; j++)                                             \
                gz[i * k + j] = (p[i * k + j] - (T)(j == labels[i])) * gi;                 \
        }                                                                                  \
    }
XENT_LOOP(float, expf, logf)
XENT_LOOP(double, exp, log)

/* Labels as int64; each checked against [0, k) (the loss checked them already: cheap). */
static const int64_t *acquire_labels(Buffers *b, PyObject *obj, Py_ssize_t rows,
                                     Py_ssize_t k) {
    if (b->count == MAX_BUFS) {
        PyErr_SetString(PyExc_RuntimeError, "glassnet._native: too many buffers");
        return NULL;
    }
    Py_buffer *view = &b->views[b->count];
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    b->count++;
    const char *fmt = view->format ? view->format : "B";
    if (fmt[0] == '<' || fmt[0] == '=' || fmt[0] == '@') fmt++;
    if (view->itemsize != 8 || !(fmt[0] == 'l' || fmt[0] == 'q') || fmt[1]) {
        PyErr_SetString(PyExc_TypeError, "labels: expected an int64 buffer");
        return NULL;
    }
    if (view->len / 8 != rows) {
        PyErr_SetString(PyExc_ValueError, "labels: expected one label per row");
        return NULL;
    }
    const int64_t *labels = view->buf;
    for (Py_ssize_t i = 0; i < rows; i++)
        if (labels[i] < 0 || labels[i] >= k) {
            PyErr_SetString(PyExc_ValueError, "labels: out of range");
            return NULL;
        }
    return labels;
}

static PyObject *py_xent_forward(PyObject *self, PyObject *args) {
    PyObject *oz, *olabels, *op, *oloss;
    if (!PyArg_ParseTuple(args, "OOOO:xent_forward", &oz, &olabels, &op, &oloss)) return NULL;
    Buffers b = {.count = 0, .dtype = 0};
    Py_ssize_t n = 0, rows = 0;
    void *z = acquire(&b, oz, "z", -1, &n);
    void *loss = z ? acquire(&b, oloss, ">loss", -1, &rows) : NULL;
    if (loss && (rows <= 0 || n % rows != 0 || n == 0)) {
        PyErr_SetString(PyExc_ValueError, "xent_forward: z must hold rows * classes values");
        loss = NULL;
    }
    void *p = loss ? acquire(&b, op, ">p", n, NULL) : NULL;
    const int64_t *labels = p ? acquire_labels(&b, olabels, rows, n / rows) : NULL;
    if (!labels) { release(&b); return NULL; }
    if (b.dtype == 'f')
        xent_forward_float(rows, n / rows, z, labels, p, loss);
    else
        xent_forward_double(rows, n / rows, z, labels, p, loss);
    release(&b);
    Py_RETURN_NONE;
}

static PyObject *py_xent_backward(PyObject *self, PyObject *args) {
    PyObject *op, *olabels, *og, *ogz;
    if (!PyArg_ParseTuple(args, "OOOO:xent_backward", &op, &olabels, &og, &ogz)) return NULL;
    Buffers b = {.count = 0, .dtype = 0};
    Py_ssize_t n = 0, rows = 0;
    void *p = acquire(&b, op, "p", -1, &n);
    void *g = p ? acquire(&b, og, "g", -1, &rows) : NULL;
    if (g && (rows <= 0 || n % rows != 0)) {
        PyErr_SetString(PyExc_ValueError, "xent_backward: p must hold rows * classes values");
        g = NULL;
    }
    void *gz = g ? acquire(&b, ogz, ">gz", n, NULL) : NULL;
    const int64_t *labels = gz ? acquire_labels(&b, olabels, rows, n / rows) : NULL;
    if (!labels) { release(&b); return NULL; }
    if (b.dtype == 'f')
        xent_backward_float(rows, n / rows, p, labels, g, gz);
    else
        xent_backward_double(rows, n / rows, p, labels, g, gz);
    release(&b);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"adam", py_adam, METH_VARARGS,
     "adam(w, g, m, v, vhat_or_None, 1-beta_1, 1-beta_2, alpha, epsilon): Keras 3 Adam step."},
    {"sgd", py_sgd, METH_VARARGS,
     "sgd(w, g, v_or_None, lr, momentum, nesterov): Keras 3 SGD step."},
    {"bn_forward", py_bn_forward, METH_VARARGS,
     "bn_forward(x, rows, gamma, beta, eps, y, mean, var, inv_std[, moving_mean, "
     "moving_variance, momentum]): batch-norm forward (and moving averages)."},
    {"bn_inference", py_bn_inference, METH_VARARGS,
     "bn_inference(x, gamma, beta, moving_mean, moving_variance, eps, y, scale, shift): "
     "batch-norm inference; leaves the per-channel scale and shift."},
    {"bn_backward", py_bn_backward, METH_VARARGS,
     "bn_backward(g, x, mean, gamma, inv_std, gx_or_None, sum_g, sum_gx, scale): "
     "batch-norm VJP (xhat recomputed from x)."},
    {"xent_forward", py_xent_forward, METH_VARARGS,
     "xent_forward(z, labels, p, loss): softmax cross-entropy of (N, K) logits, int64 labels."},
    {"xent_backward", py_xent_backward, METH_VARARGS,
     "xent_backward(p, labels, g, gz): gz = (p - onehot(labels)) * g[:, None]."},
    {"relu_backward", py_relu_backward, METH_VARARGS,
     "relu_backward(g, y, out[, colsum]): out = g * (y > 0) [, colsum = out.sum(axis=0)]."},
    {"bias_relu", py_bias_relu, METH_VARARGS, "bias_relu(z, bias): z = max(z + bias, 0)."},
    {"softmax_rows", py_softmax_rows, METH_VARARGS,
     "softmax_rows(z, k, out): softmax over the last axis of k values."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native",
                                    "glassnet's optional fused kernels (see native.py).", -1,
                                    methods};

/* Bumped whenever a kernel's arguments change: native.py refuses a build from an older
 * _native.c (an editable install after `git pull`, not rebuilt) and runs on NumPy. */
#define KERNELS_VERSION 2

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *mod = PyModule_Create(&module);
    /* whether the optimizer updates flush subnormals (tests and docs read it) */
    if (mod && (PyModule_AddIntConstant(mod, "FLUSHES_SUBNORMALS", FLUSHES_SUBNORMALS) < 0 ||
                PyModule_AddIntConstant(mod, "KERNELS_VERSION", KERNELS_VERSION) < 0)) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
