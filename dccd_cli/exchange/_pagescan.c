/*
 * dccd_cli.exchange._pagescan: the compiled fast path of dccd_cli.exchange.pagescan.
 *
 * Why: a Binance page is ~120 KB of JSON in one exact compact shape, and reading it is
 * the largest share of the CPU dccd spends per stored row. The numpy scanner in pagescan.py
 * needs ~0.4 ms a page (dozens of array passes, each with its call overhead); one pass in
 * C over the bytes needs a fraction of that.
 *
 * It reads the same shape as the numpy scanner and no more: "[" records separated by ","
 * "]", each record "{" (or "[") the layout's fields in order, separated by ",", each
 * preceded, for objects, by its exact key bytes ("name":), "}" (or "]"). No whitespace,
 * escapes, nulls, nesting, extra or missing fields. Values by kind:
 *
 *   'i'  a plain non-negative decimal integer (no sign, no leading zero but 0 itself)
 *        that fits int64;
 *   'd'  a JSON string holding -?DIGITS(.DIGITS)? whose value is exact in a double's
 *        fast path (at most 19 significant digits, mantissa <= 2^53, at most 22
 *        fraction digits): then mantissa / 10^k is one correctly rounded division,
 *        equal to the correctly rounded parse Arrow's cast does;
 *   's'  a JSON string of printable ASCII without quote or backslash (checked, not kept);
 *   'b'  true or false.
 *
 * Anything else, including valid values outside those fast paths, returns 0: "not
 * read here", and the caller falls back to the numpy scanner, which accepts exactly what
 * Arrow's casts accept, and that in turn to the JSON parser. So this file only ever
 * narrows what is read fast; it never widens what is accepted.
 *
 * scan_into(body, spec, outs) -> rows
 *   body  the reply bytes (any contiguous buffer);
 *   spec  the layout, encoded by pagescan.Layout: byte 0 keyed (0/1), byte 1 the field
 *         count, then per field: kind, output slot (255: checked only), key length, key;
 *   outs  a sequence of writable buffers, one per output slot: int64 for 'i', float64
 *         for 'd', uint8 (0/1) for 'b'.
 * Returns the number of records written to every output (>= 1), or 0.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_FIELDS 64
#define NOT_KEPT 255

typedef struct {
    unsigned char kind;
    int slot; /* -1: checked only */
    const unsigned char *key;
    Py_ssize_t keylen;
} Field;

static const double POW10[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* A plain non-negative decimal integer fitting int64; advances *pp past it. */
static inline int read_int(const unsigned char **pp, const unsigned char *end, int64_t *out)
{
    const unsigned char *p = *pp;
    if (p >= end)
        return 0;
    unsigned d = (unsigned)*p - '0';
    if (d > 9)
        return 0;
    p++;
    if (d == 0) {
        if (p < end && (unsigned)*p - '0' <= 9)
            return 0; /* a leading zero */
        *out = 0;
        *pp = p;
        return 1;
    }
    uint64_t x = d;
    int digits = 1;
    while (p < end && (d = (unsigned)*p - '0') <= 9) {
        if (++digits > 19)
            return 0; /* beyond int64 (19 digits cannot overflow uint64) */
        x = x * 10 + d;
        p++;
    }
    if (x > (uint64_t)INT64_MAX)
        return 0;
    *out = (int64_t)x;
    *pp = p;
    return 1;
}

/* A run of digits into the mantissa *m (leading zeros are not significant); the count of
 * digits, or -1 past 19 significant ones (beyond the fast path, and uint64). */
static inline int read_digits(const unsigned char **pp, const unsigned char *end, uint64_t *m,
                              int *significant)
{
    const unsigned char *p = *pp;
    int count = 0;
    unsigned d;
    while (p < end && (d = (unsigned)*p - '0') <= 9) {
        if (*m || d) {
            if (++*significant > 19)
                return -1;
            *m = *m * 10 + d;
        }
        count++;
        p++;
    }
    *pp = p;
    return count;
}

/* "-?DIGITS(.DIGITS)?" inside quotes, when exact in the double fast path. */
static inline int read_dec(const unsigned char **pp, const unsigned char *end, double *out)
{
    const unsigned char *p = *pp;
    if (p >= end || *p != '"')
        return 0;
    p++;
    int negative = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    uint64_t m = 0;
    int significant = 0, frac_digits = 0;
    if (read_digits(&p, end, &m, &significant) <= 0)
        return 0;
    if (p < end && *p == '.') {
        p++;
        frac_digits = read_digits(&p, end, &m, &significant);
        if (frac_digits <= 0)
            return 0;
    }
    if (p >= end || *p != '"')
        return 0;
    if (m > (UINT64_C(1) << 53) || frac_digits > 22)
        return 0;
    double v = (double)m / POW10[frac_digits];
    *out = negative ? -v : v;
    *pp = p + 1;
    return 1;
}

/* A JSON string of printable ASCII without quote or backslash. */
static inline int skip_str(const unsigned char **pp, const unsigned char *end)
{
    const unsigned char *p = *pp;
    if (p >= end || *p != '"')
        return 0;
    p++;
    while (p < end && *p != '"') {
        unsigned char c = *p;
        if (c < 0x21 || c > 0x7E || c == '\\')
            return 0;
        p++;
    }
    if (p >= end)
        return 0;
    *pp = p + 1;
    return 1;
}

static inline int read_bool(const unsigned char **pp, const unsigned char *end, unsigned char *out)
{
    const unsigned char *p = *pp;
    if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
        *out = 1;
        *pp = p + 4;
        return 1;
    }
    if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
        *out = 0;
        *pp = p + 5;
        return 1;
    }
    return 0;
}

/* The records of body in the layout, into the outputs; 0 when not in that shape. */
static Py_ssize_t scan_records(const unsigned char *body, Py_ssize_t size, int keyed,
                               const Field *fields, int nfields, char *const *outs,
                               const Py_ssize_t *caps)
{
    const unsigned char *p = body, *end = body + size;
    const unsigned char opener = keyed ? '{' : '[', closer = keyed ? '}' : ']';
    Py_ssize_t n = 0;
    if (size < 2 || *p != '[')
        return 0;
    p++;
    for (;;) {
        if (p >= end || *p != opener)
            return 0; /* also the empty page "[]": the general path's */
        p++;
        for (int j = 0; j < nfields; j++) {
            const Field *f = &fields[j];
            if (j) {
                if (p >= end || *p != ',')
                    return 0;
                p++;
            }
            if (f->keylen) {
                if (end - p < f->keylen || memcmp(p, f->key, (size_t)f->keylen) != 0)
                    return 0;
                p += f->keylen;
            }
            if (f->slot >= 0 && n >= caps[f->slot])
                return 0; /* the caller sized outputs by the smallest record: never seen */
            switch (f->kind) {
            case 'i': {
                int64_t v;
                if (!read_int(&p, end, &v))
                    return 0;
                if (f->slot >= 0)
                    ((int64_t *)outs[f->slot])[n] = v;
                break;
            }
            case 'd': {
                double v;
                if (!read_dec(&p, end, &v))
                    return 0;
                if (f->slot >= 0)
                    ((double *)outs[f->slot])[n] = v;
                break;
            }
            case 'b': {
                unsigned char v;
                if (!read_bool(&p, end, &v))
                    return 0;
                if (f->slot >= 0)
                    ((unsigned char *)outs[f->slot])[n] = v;
                break;
            }
            case 's':
                if (f->slot >= 0 || !skip_str(&p, end))
                    return 0; /* kept strings are the numpy scanner's */
                break;
            default:
                return 0;
            }
        }
        if (p >= end || *p != closer)
            return 0;
        p++;
        n++;
        if (p >= end)
            return 0;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == ']' && p + 1 == end)
            return n;
        return 0;
    }
}

static PyObject *scan_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "scan_into(body, spec, outs) takes 3 arguments");
        return NULL;
    }
    Py_buffer body, spec;
    Py_buffer views[MAX_FIELDS];
    char *outs[MAX_FIELDS];
    Py_ssize_t caps[MAX_FIELDS];
    Field fields[MAX_FIELDS];
    Py_ssize_t nouts = 0, got = 0;
    PyObject *seq = NULL, *result = NULL;

    if (PyObject_GetBuffer(args[0], &body, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &spec, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&body);
        return NULL;
    }
    seq = PySequence_Fast(args[2], "outs must be a sequence of writable buffers");
    if (seq == NULL)
        goto done;

    /* The layout. */
    const unsigned char *s = spec.buf;
    Py_ssize_t slen = spec.len, at = 2;
    if (slen < 2 || s[1] > MAX_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "bad layout spec");
        goto done;
    }
    int keyed = s[0], nfields = s[1];
    Py_ssize_t want = PySequence_Fast_GET_SIZE(seq);
    if (want > MAX_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "too many outputs");
        goto done;
    }
    for (int j = 0; j < nfields; j++) {
        if (at + 3 > slen || at + 3 + s[at + 2] > slen) {
            PyErr_SetString(PyExc_ValueError, "bad layout spec");
            goto done;
        }
        fields[j].kind = s[at];
        fields[j].slot = s[at + 1] == NOT_KEPT ? -1 : s[at + 1];
        fields[j].keylen = s[at + 2];
        fields[j].key = s + at + 3;
        if (fields[j].slot >= want) {
            PyErr_SetString(PyExc_ValueError, "a field's output slot is missing");
            goto done;
        }
        at += 3 + fields[j].keylen;
    }

    /* The outputs, with their capacities in items. */
    for (; nouts < want; nouts++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, nouts), &views[nouts],
                               PyBUF_WRITABLE) < 0)
            goto done;
        outs[nouts] = views[nouts].buf;
        caps[nouts] = views[nouts].len; /* in bytes, until the kinds below say the width */
    }
    for (int j = 0; j < nfields; j++) {
        if (fields[j].slot >= 0 && fields[j].kind != 'b')
            caps[fields[j].slot] = views[fields[j].slot].len / 8;
    }

    Py_BEGIN_ALLOW_THREADS
    got = scan_records(body.buf, body.len, keyed, fields, nfields, outs, caps);
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(got);

done:
    for (Py_ssize_t i = 0; i < nouts; i++)
        PyBuffer_Release(&views[i]);
    Py_XDECREF(seq);
    PyBuffer_Release(&spec);
    PyBuffer_Release(&body);
    return result;
}

static PyMethodDef methods[] = {
    {"scan_into", (PyCFunction)(void (*)(void))scan_into, METH_FASTCALL,
     "scan_into(body, spec, outs) -> rows: read a page in the layout into the outputs; "
     "0 when it is not in that exact shape (see dccd_cli.exchange.pagescan)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dccd_cli.exchange._pagescan", "The compiled fast path of dccd_cli.exchange.pagescan.",
    -1, methods,
};

PyMODINIT_FUNC PyInit__pagescan(void)
{
    return PyModule_Create(&module);
}
