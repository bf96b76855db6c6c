/* One pass over a uniform SLF node or link block: the compiled fast path of slf_columns.py.
 *
 * block_values(data, start, end, lead, int_keys, float_keys, word_key) reads the
 * block data[start:end] (data: bytes-like, or an ASCII str read in place, so a
 * block of a file's text needs no copy). The block's lines must all have the
 * layout of the first line (the same key=value fields in the
 * same order, separated by runs of spaces or tabs). It returns
 *   (names, num_lines, columns, word_index, distinct_words)
 * names: the layout's keys (tuple of str); columns: {key: bytes}, the int64
 * (int_keys) or float64 (float_keys) value of each line; word_index: bytes of
 * int64, the word_key value of each line as an index into distinct_words (a
 * list of str in order of first appearance), or None without that key.
 *
 * It returns None (and the numpy path of slf_columns.py decides) for anything
 * else: a line with another layout, a blank or indented line, a '"', a control
 * byte other than tab, a non-ASCII byte outside word values, an empty int,
 * float or word value, a word over 256 bytes, an int other than 1-18 ASCII
 * digits, or a float other than [+-]digits[.digits] with 1-18 digits. Values
 * are then those of slf_columns.py's numpy path bit for bit: a float is
 * m / 10**f (mantissa m < 2**53 exact, f <= 18 fraction digits), one IEEE
 * division, negated after a '-'.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_KEYS 64
#define MAX_WORD_BYTES 256
#define MAX_DIGITS 18

enum role { SKIP, INT_VALUE, FLOAT_VALUE, WORD_VALUE };

typedef struct {
    const char *start;
    Py_ssize_t length;
} span;

/* Distinct words by open addressing; slots hold index + 1 (0: empty). */
typedef struct {
    span *words;
    Py_ssize_t count, capacity;
    Py_ssize_t *slots;
    Py_ssize_t num_slots;
} word_table;

static uint64_t hash_bytes(const char *s, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static int table_grow(word_table *t) {
    Py_ssize_t num_slots = t->num_slots ? 2 * t->num_slots : 1024;
    Py_ssize_t *slots = PyMem_Calloc(num_slots, sizeof(Py_ssize_t));
    span *words = PyMem_Realloc(t->words, (num_slots / 2) * sizeof(span));
    if (!slots || !words) {
        PyMem_Free(slots);
        if (words) t->words = words;
        return -1;
    }
    t->words = words;
    t->capacity = num_slots / 2;
    for (Py_ssize_t i = 0; i < t->count; i++) {
        uint64_t h = hash_bytes(words[i].start, words[i].length) & (num_slots - 1);
        while (slots[h]) h = (h + 1) & (num_slots - 1);
        slots[h] = i + 1;
    }
    PyMem_Free(t->slots);
    t->slots = slots;
    t->num_slots = num_slots;
    return 0;
}

/* The index of the word, added if new; -1 on memory failure. */
static Py_ssize_t table_index(word_table *t, const char *s, Py_ssize_t n) {
    if (t->count >= t->capacity && table_grow(t) < 0) return -1;
    uint64_t h = hash_bytes(s, n) & (t->num_slots - 1);
    while (t->slots[h]) {
        span *w = &t->words[t->slots[h] - 1];
        if (w->length == n && memcmp(w->start, s, n) == 0) return t->slots[h] - 1;
        h = (h + 1) & (t->num_slots - 1);
    }
    t->words[t->count].start = s;
    t->words[t->count].length = n;
    t->slots[h] = ++t->count;
    return t->count - 1;
}

/* An int value at p: 1-18 ASCII digits up to the first byte <= ' ' (or end).
 * Returns where it ends, or NULL for anything else. */
static const char *scan_int(const char *p, const char *end, int64_t *out) {
    const char *start = p;
    int64_t value = 0;
    for (; p < end; p++) {
        unsigned digit = (unsigned char)*p - '0';
        if (digit > 9) break;
        if (p - start == MAX_DIGITS) return NULL;
        value = value * 10 + digit;
    }
    if (p == start || (p < end && (unsigned char)*p > ' ')) return NULL;
    *out = value;
    return p;
}

static const double POW10[MAX_DIGITS + 1] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
    1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};

/* A float value at p: [+-]digits[.digits] with 1-18 digits (mantissa < 2**53) up to
 * the first byte <= ' ' (or end), as m / 10**f. Returns where it ends, or NULL. */
static const char *scan_float(const char *p, const char *end, double *out) {
    int negative = 0, digits = 0, fraction = 0, dot = 0;
    if (p < end && (*p == '-' || *p == '+')) negative = *p++ == '-';
    int64_t mantissa = 0;
    for (; p < end; p++) {
        unsigned digit = (unsigned char)*p - '0';
        if (digit <= 9) {
            if (++digits > MAX_DIGITS) return NULL;
            mantissa = mantissa * 10 + digit;
            fraction += dot;
        } else if (*p == '.' && !dot) {
            dot = 1;
        } else {
            break;
        }
    }
    if ((p < end && (unsigned char)*p > ' ') || digits < 1 || mantissa >= (1LL << 53)) return NULL;
    double value = (double)mantissa / POW10[fraction];
    *out = negative ? -value : value;
    return p;
}

/* Role of each layout key from the caller's key tuples. */
static int key_in(PyObject *keys, const char *s, Py_ssize_t n) {
    Py_ssize_t count = PyTuple_GET_SIZE(keys);
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t size;
        const char *key = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(keys, i), &size);
        if (!key) {
            PyErr_Clear(); /* not a str: matches no key */
            continue;
        }
        if (size == n && memcmp(key, s, n) == 0) return 1;
    }
    return 0;
}

#define IS_BLANK(c) ((c) == ' ' || (c) == '\t')

typedef struct {
    span keys[MAX_KEYS]; /* each "name=" of the first line */
    enum role roles[MAX_KEYS];
    int num_keys;
} layout;

/* The layout of the first line, or 0 (with no Python error set) when it has none. */
static int read_layout(const char *p, const char *end, const char *lead, layout *out) {
    size_t lead_size = strlen(lead);
    if ((size_t)(end - p) <= lead_size || memcmp(p, lead, lead_size) != 0 || p[lead_size] != '=')
        return 0;
    out->num_keys = 0;
    while (p < end && *p != '\n') {
        const char *token = p;
        while (p < end && *p != '=' && (unsigned char)*p > ' ' && (unsigned char)*p < 0x80 &&
               *p != '"')
            p++;
        if (p == end || *p != '=' || p == token || out->num_keys == MAX_KEYS) return 0;
        out->keys[out->num_keys].start = token;
        out->keys[out->num_keys++].length = p - token + 1; /* with the '=' */
        while (p < end && (unsigned char)*p > ' ') p++;
        while (p < end && IS_BLANK(*p)) p++;
    }
    return 1;
}

static PyObject *block_values(PyObject *self, PyObject *args) {
    PyObject *source, *int_keys, *float_keys, *word_key;
    Py_ssize_t start, stop;
    const char *lead;
    if (!PyArg_ParseTuple(args, "OnnsO!O!O", &source, &start, &stop, &lead, &PyTuple_Type,
                          &int_keys, &PyTuple_Type, &float_keys, &word_key))
        return NULL;
    Py_buffer buffer = {0};
    const char *base;
    Py_ssize_t size;
    if (PyUnicode_Check(source)) {
        if (!PyUnicode_IS_ASCII(source)) {
            PyErr_SetString(PyExc_TypeError, "block_values: a str must be ASCII (pass UTF-8 bytes)");
            return NULL;
        }
        if (!(base = PyUnicode_AsUTF8AndSize(source, &size))) return NULL; /* ASCII: no copy */
    } else {
        if (PyObject_GetBuffer(source, &buffer, PyBUF_SIMPLE) < 0) return NULL;
        base = buffer.buf;
        size = buffer.len;
    }
    if (start < 0 || start > stop || stop > size) {
        PyBuffer_Release(&buffer);
        PyErr_SetString(PyExc_ValueError, "block_values: bad start/end");
        return NULL;
    }
    const char *data = base + start, *end = base + stop;
    PyObject *result = NULL, *columns = NULL, *names = NULL, *index_bytes = NULL,
             *distinct = NULL;
    char *outputs[MAX_KEYS] = {0};
    PyObject *output_objects[MAX_KEYS] = {0};
    int64_t *word_index = NULL;
    word_table table = {0};
    layout lay;
    const char *word_name = NULL;
    Py_ssize_t word_name_size = 0;
    if (word_key != Py_None && !(word_name = PyUnicode_AsUTF8AndSize(word_key, &word_name_size)))
        goto done;
    if (!read_layout(data, end, lead, &lay)) goto refuse;
    Py_ssize_t num_lines = 1;
    for (const char *q = data; (q = memchr(q, '\n', end - q)) != NULL; q++) num_lines++;
    for (int k = 0; k < lay.num_keys; k++) {
        const char *name = lay.keys[k].start;
        Py_ssize_t size = lay.keys[k].length - 1;
        lay.roles[k] = key_in(int_keys, name, size)     ? INT_VALUE
                       : key_in(float_keys, name, size) ? FLOAT_VALUE
                       : (word_name && size == word_name_size && memcmp(name, word_name, size) == 0)
                           ? WORD_VALUE
                           : SKIP;
        if (lay.roles[k] == INT_VALUE || lay.roles[k] == FLOAT_VALUE) {
            output_objects[k] = PyBytes_FromStringAndSize(NULL, num_lines * 8);
            if (!output_objects[k]) goto done;
            outputs[k] = PyBytes_AS_STRING(output_objects[k]);
        } else if (lay.roles[k] == WORD_VALUE && !word_index) {
            index_bytes = PyBytes_FromStringAndSize(NULL, num_lines * 8);
            if (!index_bytes) goto done;
            word_index = (int64_t *)PyBytes_AS_STRING(index_bytes);
        } else if (lay.roles[k] == WORD_VALUE) {
            goto refuse; /* a repeated key: Python refuses the layout anyway */
        }
    }
    const char *p = data;
    for (Py_ssize_t line = 0; line < num_lines; line++) {
        for (int k = 0; k < lay.num_keys; k++) {
            span key = lay.keys[k];
            if (end - p < key.length || memcmp(p, key.start, key.length) != 0) goto refuse;
            p += key.length;
            /* Each value is read in the one pass that finds its end. */
            enum role role = lay.roles[k];
            if (role == INT_VALUE) {
                if (!(p = scan_int(p, end, (int64_t *)outputs[k] + line))) goto refuse;
            } else if (role == FLOAT_VALUE) {
                if (!(p = scan_float(p, end, (double *)outputs[k] + line))) goto refuse;
            } else if (role == SKIP) {
                for (; p < end && (unsigned char)*p > ' '; p++)
                    if (*p == '"' || (unsigned char)*p >= 0x80) goto refuse;
            } else {
                const char *value = p;
                for (; p < end && (unsigned char)*p > ' '; p++)
                    if (*p == '"') goto refuse;
                Py_ssize_t size = p - value;
                if (size < 1 || size > MAX_WORD_BYTES) goto refuse;
                Py_ssize_t index = table_index(&table, value, size);
                if (index < 0) {
                    PyErr_NoMemory();
                    goto done;
                }
                word_index[line] = index;
            }
            /* Between fields a run of blanks; after the last, blanks up to the line's end. */
            const char *blanks = p;
            while (p < end && IS_BLANK(*p)) p++;
            if (k + 1 < lay.num_keys && p == blanks) goto refuse;
        }
        if (p < end) {
            if (*p != '\n') goto refuse; /* more fields, or a control byte */
            p++;
            if (p == end || IS_BLANK(*p) || *p == '\n') goto refuse; /* blank or indented line */
        }
    }
    if (!(names = PyTuple_New(lay.num_keys)) || !(columns = PyDict_New())) goto done;
    for (int k = 0; k < lay.num_keys; k++) {
        PyObject *name = PyUnicode_DecodeASCII(lay.keys[k].start, lay.keys[k].length - 1, NULL);
        if (!name) goto done;
        PyTuple_SET_ITEM(names, k, name);
        if (output_objects[k] && PyDict_SetItem(columns, name, output_objects[k]) < 0) goto done;
    }
    if (!(distinct = PyList_New(table.count))) goto done;
    for (Py_ssize_t i = 0; i < table.count; i++) {
        PyObject *word = PyUnicode_DecodeUTF8(table.words[i].start, table.words[i].length, NULL);
        if (!word) goto done;
        PyList_SET_ITEM(distinct, i, word);
    }
    result = Py_BuildValue("(OnOOO)", names, num_lines, columns,
                           index_bytes ? index_bytes : Py_None, distinct);
    goto done;
refuse:
    result = Py_None;
    Py_INCREF(result);
done:
    for (int k = 0; k < MAX_KEYS; k++) Py_XDECREF(output_objects[k]);
    Py_XDECREF(names);
    Py_XDECREF(columns);
    Py_XDECREF(index_bytes);
    Py_XDECREF(distinct);
    PyMem_Free(table.words);
    PyMem_Free(table.slots);
    if (buffer.obj) PyBuffer_Release(&buffer);
    return result;
}

static PyMethodDef methods[] = {
    {"block_values", block_values, METH_VARARGS,
     "block_values(data, start, end, lead, int_keys, float_keys, word_key): the columns of "
     "the uniform SLF block data[start:end], or None (see slf_columns.py)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_slf_block",
                                    "Compiled fast path of slf_columns.py.", -1, methods};

PyMODINIT_FUNC PyInit__slf_block(void) { return PyModule_Create(&module); }
