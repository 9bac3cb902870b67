/* conv_client.c: the exec protocol's worked example (docs/exec-protocol.md).
 *
 * A complete implementation, in direct loops, of Conv1D, Conv2D, ZeroPadding1D, ZeroPadding2D,
 * Cropping1D and Cropping2D: their core (channels_last, groups=1, padding valid or same, activation
 * linear) plus channels_first and the relu family of activations, in float32 and float64, driven by
 * conv-conformance over stdin and stdout:
 *
 *     cc -O2 -std=c99 -o conv_client clients/c/conv_client.c
 *     conv-conformance certify --adapter exec:./conv_client --profile standard --out bundle
 *
 * It rejects what Keras rejects (an "error" response) and declines the optional features it does
 * not implement ("unsupported"), as its declaration in the hello says. It reads the compact JSON
 * the harness writes by looking keys up, which is enough for the few it needs. Assumes a
 * little-endian host (every buffer of the protocol is little-endian). Logs go to stderr only.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { char name[64], dtype[16]; long shape[8]; int ndim; size_t count; double *data; } Array;

static const char *ACTIVATIONS[] = {"linear", "relu", "relu6", "leaky_relu", "elu", "selu", "celu",
    "exponential", "sigmoid", "log_sigmoid", "tanh", "tanh_shrink", "softsign", "silu", "swish", "gelu",
    "mish", "hard_silu", "hard_swish", "softplus", "squareplus", "sparse_plus", "hard_sigmoid", "hard_tanh",
    "sparse_sigmoid", "soft_shrink", "hard_shrink", "softmax", "log_softmax", "sparsemax", "glu", NULL};

/* ------------------------------------------------------------------ bytes on the pipes */

static int read_exact(void *buf, size_t n) {  /* 1: read; 0: the harness closed stdin first */
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(0, (char *)buf + got, n - got);
        if (r <= 0) { if (got == 0) return 0; fprintf(stderr, "conv_client: stdin ended mid-frame\n"); exit(70); }
        got += (size_t)r;
    }
    return 1;
}

static void write_all(const void *buf, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(1, (const char *)buf + done, n - done);
        if (w <= 0) exit(71);
        done += (size_t)w;
    }
}

static void send_frame(const char *header, const void *payload, size_t bytes) {
    uint32_t n = (uint32_t)strlen(header);
    write_all(&n, 4);
    write_all(header, n);
    if (bytes) write_all(payload, bytes);
}

static void reply(long id, const char *status, const char *field, const char *text) {
    char h[512];
    snprintf(h, sizeof h, "{\"id\":%ld,\"status\":\"%s\",\"%s\":\"%s\"}", id, status, field, text);
    send_frame(h, NULL, 0);
}

/* ------------------------------------------------------------------ a minimal JSON reader */

static const char *key(const char *json, const char *name) {  /* the value after "name": */
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":", name);
    const char *p = strstr(json, pat);
    return p ? p + strlen(pat) : NULL;
}

/* An integer or a (nested) list of integers, flattened into out; *top is the number of
 * top-level entries (1 for a bare integer). -1 for anything else (a string, a float, null). */
static int ints(const char *p, long *out, int max, int *top) {
    int count = 0, depth = 0;
    *top = 0;
    if (!p) return -1;
    do {
        if (*p == '[') { if (depth++ == 1) (*top)++; p++; continue; }
        if (*p == ']') { depth--; p++; continue; }
        if (*p == ',') { p++; continue; }
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || *end == '.' || *end == 'e' || count == max) return -1;
        if (depth <= 1) (*top)++;
        out[count++] = v;
        p = end;
    } while (depth > 0);
    return count;
}

static int str(const char *p, char *out, size_t n) {  /* 1 when p is a string (copied) */
    if (!p || *p != '"') return 0;
    size_t i = 0;
    for (p++; *p && *p != '"' && i + 1 < n; p++) out[i++] = *p;
    out[i] = 0;
    return 1;
}

/* ------------------------------------------------------------------ the layers */

typedef struct { int rank, C, H, W, B; long k[2], s[2], d[2]; char padding[16]; } Geometry;

/* The per-dimension amounts of a Cropping/ZeroPadding argument as 2 pairs (the dummy row first
 * for rank 1); 0 when Keras rejects the value. */
static int pairs(const char *p, int rank, long pr[2][2]) {
    long v[8]; int top, n = ints(p, v, 8, &top);
    memset(pr, 0, sizeof(long) * 4);
    if (n == 1 && *p != '[') v[1] = v[2] = v[3] = v[0];
    else if (rank == 1 && n == 2 && top == 2) { }
    else if (rank == 2 && n == 2 && top == 2) { v[3] = v[2] = v[1]; v[1] = v[0]; }
    else if (rank == 2 && n == 4 && top == 2) { }
    else return 0;
    for (int i = 0; i < (rank == 1 ? 2 : 4); i++) if (v[i] < 0) return 0;
    if (rank == 1) { pr[1][0] = v[0]; pr[1][1] = v[1]; } else memcpy(pr, v, sizeof(long) * 4);
    return 1;
}

static int tuple(const char *p, int rank, long out[2], long minimum) {  /* Keras's standardize_tuple */
    long v[8]; int top, n = ints(p, v, 8, &top);
    if (n == 1 && *p != '[') v[1] = v[0];
    else if (n != rank || top != rank) return 0;
    out[0] = rank == 1 ? 1 : v[0];
    out[1] = rank == 1 ? v[0] : v[1];
    return out[0] >= minimum && out[1] >= minimum;
}

static double activate(const char *act, double v) {
    if (!strcmp(act, "relu")) return v > 0 ? v : 0.0;
    if (!strcmp(act, "relu6")) return v > 0 ? (v < 6 ? v : 6.0) : 0.0;
    if (!strcmp(act, "leaky_relu")) return v > 0 ? v : 0.2 * v;
    return v;
}

/* (B, C, S) <-> (B, S, C) in place through a copy: to_last 1 moves channels last, 0 back first. */
static void transpose(Array *a, long B, long C, long S, int to_last) {
    double *t = malloc((a->count + 1) * sizeof(double));
    for (long b = 0; b < B; b++)
        for (long c = 0; c < C; c++)
            for (long s = 0; s < S; s++) {
                long first = (b * C + c) * S + s, last = (b * S + s) * C + c;
                t[to_last ? last : first] = a->data[to_last ? first : last];
            }
    free(a->data);
    a->data = t;
}

static double at(const Array *x, const Geometry *g, long b, long h, long w, long c) {
    return x->data[((b * g->H + h) * g->W + w) * g->C + c];
}

/* The answer to one forward request: 0 after a reply was sent, else the output filled in. */
static int forward(long id, const char *h, Array *a, int na, Array *out) {
    char cls[32] = "", fmt[32] = "channels_last", act[32] = "linear", msg[160];
    str(key(h, "class_name"), cls, sizeof cls);
    int rank = strchr(cls, '1') ? 1 : 2;
    int conv = !strcmp(cls, "Conv1D") || !strcmp(cls, "Conv2D");
    int crop = !strncmp(cls, "Cropping", 8), pad = !strncmp(cls, "ZeroPadding", 11);
    if ((!conv && !crop && !pad) || strchr(cls, '3')) { reply(id, "unsupported", "reason", "not implemented here"); return 0; }
    Array *x = &a[0], *kernel = NULL, *bias = NULL;
    for (int i = 1; i < na; i++) {
        if (!strcmp(a[i].name, "kernel")) kernel = &a[i];
        if (!strcmp(a[i].name, "bias")) bias = &a[i];
    }
    if (key(h, "data_format") && (!str(key(h, "data_format"), fmt, sizeof fmt)
                                  || (strcmp(fmt, "channels_last") && strcmp(fmt, "channels_first")))) {
        reply(id, "error", "message", "data_format must be channels_last or channels_first"); return 0;
    }
    if (x->ndim != rank + 2) { reply(id, "error", "message", "inputs must have rank 3 (1D) or 4 (2D)"); return 0; }
    int first = !strcmp(fmt, "channels_first");  /* spatial axes start at 1 (last) or 2 (first) */
    Geometry g = {0};
    g.rank = rank, g.B = (int)x->shape[0], g.C = (int)x->shape[first ? 1 : rank + 1];
    g.H = rank == 1 ? 1 : (int)x->shape[first + 1], g.W = (int)x->shape[first + rank];
    long oh = g.H, ow = g.W, oc = g.C, pr[2][2] = {{0, 0}, {0, 0}};
    if (conv) {
        long filters[8], groups[8]; int top;
        if (ints(key(h, "filters"), filters, 1, &top) != 1 || filters[0] < 1)
            { reply(id, "error", "message", "filters must be an integer >= 1"); return 0; }
        if (!tuple(key(h, "kernel_size"), rank, g.k, 1) || !tuple(key(h, "strides"), rank, g.s, 1)
            || !tuple(key(h, "dilation_rate"), rank, g.d, 1))
            { reply(id, "error", "message", "kernel_size, strides and dilation_rate must be integers >= 1"); return 0; }
        if ((g.s[0] > 1 || g.s[1] > 1) && (g.d[0] > 1 || g.d[1] > 1))
            { reply(id, "error", "message", "strides > 1 and dilation_rate > 1 together"); return 0; }
        str(key(h, "padding"), g.padding, sizeof g.padding);
        if (strcmp(g.padding, "valid") && strcmp(g.padding, "same") && (rank != 1 || strcmp(g.padding, "causal")))
            { reply(id, "error", "message", "padding must be valid or same (or causal for Conv1D)"); return 0; }
        if (ints(key(h, "groups"), groups, 1, &top) != 1 || groups[0] < 1 || filters[0] % groups[0] || g.C % groups[0])
            { reply(id, "error", "message", "groups must divide filters and the input channels"); return 0; }
        int known = 0;
        str(key(h, "activation"), act, sizeof act);
        for (const char **n = ACTIVATIONS; *n; n++) known |= !strcmp(*n, act);
        if (!known) { reply(id, "error", "message", "unknown activation"); return 0; }
        long *dims[2] = {&oh, &ow}, n[2] = {g.H, g.W};
        for (int j = 0; j < 2; j++) {
            long span = g.d[j] * (g.k[j] - 1) + 1;
            *dims[j] = strcmp(g.padding, "valid") ? (n[j] + g.s[j] - 1) / g.s[j]
                                                  : (n[j] >= span ? (n[j] - span) / g.s[j] + 1 : 0);
            if (*dims[j] <= 0) { reply(id, "error", "message", "the kernel does not fit in the input"); return 0; }
            if (!strcmp(g.padding, "same")) {
                long total = (*dims[j] - 1) * g.s[j] + span - n[j];
                pr[j][0] = total > 0 ? total / 2 : 0;
            }
        }
        oc = filters[0];
        long last = first ? ow : oc;
        if (!strcmp(act, "glu") && last % 2) { reply(id, "error", "message", "glu needs an even last axis"); return 0; }
        int relus = !strcmp(act, "linear") || !strcmp(act, "relu") || !strcmp(act, "relu6") || !strcmp(act, "leaky_relu");
        snprintf(msg, sizeof msg, "declines %s%s%s", groups[0] > 1 ? "groups " : "",
                 !strcmp(g.padding, "causal") ? "causal " : "", relus ? "" : "activations outside the relu family");
        if (groups[0] > 1 || !strcmp(g.padding, "causal") || !relus) { reply(id, "unsupported", "reason", msg); return 0; }
        if (!kernel) { reply(id, "error", "message", "no kernel given"); return 0; }
    } else {
        if (!pairs(key(h, crop ? "cropping" : "padding"), rank, pr))
            { reply(id, "error", "message", "amounts must be non-negative integers, one pair per dimension"); return 0; }
        oh = crop ? g.H - pr[0][0] - pr[0][1] : g.H + pr[0][0] + pr[0][1];
        ow = crop ? g.W - pr[1][0] - pr[1][1] : g.W + pr[1][0] + pr[1][1];
        if (oh <= 0 || ow <= 0) { reply(id, "error", "message", "cropping must total less than the input"); return 0; }
    }
    if (first) transpose(x, g.B, g.C, (long)g.H * g.W, 1);  /* layout handled once, here and at the end */
    out->ndim = rank + 2;
    out->shape[0] = g.B;
    if (rank == 2) out->shape[1] = oh;
    out->shape[rank] = ow;
    out->shape[rank + 1] = oc;
    out->count = (size_t)g.B * oh * ow * oc;
    out->data = calloc(out->count ? out->count : 1, sizeof(double));
    double *y = out->data;
    for (long b = 0; b < g.B; b++)
        for (long i = 0; i < oh; i++)
            for (long j = 0; j < ow; j++)
                for (long f = 0; f < oc; f++, y++) {
                    if (!conv) {  /* crop: shift inwards; pad: shift outwards, zero outside */
                        long ih = crop ? i + pr[0][0] : i - pr[0][0], iw = crop ? j + pr[1][0] : j - pr[1][0];
                        *y = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? at(x, &g, b, ih, iw, f) : 0.0;
                        continue;
                    }
                    double acc = bias ? bias->data[f] : 0.0;
                    for (long u = 0; u < g.k[0]; u++) {
                        long ih = i * g.s[0] - pr[0][0] + u * g.d[0];
                        if (ih < 0 || ih >= g.H) continue;
                        for (long v = 0; v < g.k[1]; v++) {
                            long iw = j * g.s[1] - pr[1][0] + v * g.d[1];
                            if (iw < 0 || iw >= g.W) continue;
                            const double *w = kernel->data + ((u * g.k[1] + v) * g.C) * oc + f;
                            for (long c = 0; c < g.C; c++) acc += at(x, &g, b, ih, iw, c) * w[c * oc];
                        }
                    }
                    *y = activate(act, acc);
                }
    strcpy(out->dtype, x->dtype);
    if (first) {
        transpose(out, g.B, oc, oh * ow, 0);
        memmove(out->shape + 2, out->shape + 1, sizeof(long) * rank);
        out->shape[1] = oc;
    }
    return 1;
}

/* ------------------------------------------------------------------ the protocol loop */

static const char *HELLO = "{\"protocol\":\"conv-conformance-exec/1\",\"name\":\"conv-client-c\","
    "\"versions\":{\"conv-client-c\":\"1.0\"},\"environment\":{\"summation\":\"direct loops, float64 accumulator\"},"
    "\"methods\":[\"forward\"],\"declaration\":{\"layers\":{"
    "\"Conv1D\":[\"channels_first\",\"activation:relu\"],\"Conv2D\":[\"channels_first\",\"activation:relu\"],"
    "\"Cropping1D\":[],\"Cropping2D\":[\"channels_first\"],\"ZeroPadding1D\":[\"channels_first\"],"
    "\"ZeroPadding2D\":[\"channels_first\"]},\"dtypes\":[\"float32\",\"float64\"],\"gradients\":false}}";

static int parse_arrays(const char *h, Array *a, int max) {
    const char *p = key(h, "arrays");
    int n = 0;
    while (p && n < max && (p = strstr(p, "{\"name\":"))) {
        Array *x = &a[n++];
        int top;
        memset(x, 0, sizeof *x);
        str(key(p, "name"), x->name, sizeof x->name);
        str(key(p, "dtype"), x->dtype, sizeof x->dtype);
        x->ndim = ints(key(p, "shape"), x->shape, 8, &top);
        if (x->ndim < 0) x->ndim = 0;
        if (top == 0) x->ndim = 0;  /* shape [] */
        x->count = 1;
        for (int i = 0; i < x->ndim; i++) x->count *= (size_t)x->shape[i];
        p += 8;
    }
    return n;
}

int main(void) {
    send_frame(HELLO, NULL, 0);
    for (;;) {
        uint32_t n;
        if (!read_exact(&n, 4)) return 0;
        char *h = malloc((size_t)n + 1);
        read_exact(h, n);
        h[n] = 0;
        long id = strtol(key(h, "id"), NULL, 10);
        Array a[8], out = {0};
        int na = parse_arrays(h, a, 8), typed = 1;
        for (int i = 0; i < na; i++) {  /* every buffer is read, whatever its dtype */
            size_t size = !strcmp(a[i].dtype, "float64") ? 8 : !strcmp(a[i].dtype, "float32") ? 4 : 2;
            unsigned char *raw = malloc(a[i].count * size + 1);
            read_exact(raw, a[i].count * size);
            a[i].data = malloc((a[i].count + 1) * sizeof(double));
            for (size_t j = 0; j < a[i].count; j++)
                a[i].data[j] = size == 8 ? ((double *)raw)[j] : size == 4 ? ((float *)raw)[j] : 0.0;
            typed &= size != 2;
            free(raw);
        }
        char method[32] = "";
        str(key(h, "method"), method, sizeof method);
        if (strcmp(method, "forward")) reply(id, "error", "message", "this client serves forward only");
        else if (!typed) reply(id, "unsupported", "reason", "float32 and float64 only");
        else if (na < 1 || strcmp(a[0].name, "inputs")) reply(id, "error", "message", "no inputs given");
        else if (forward(id, h, a, na, &out)) {
            char header[512], shape[128] = "";
            for (int i = 0; i < out.ndim; i++)
                snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%ld", i ? "," : "", out.shape[i]);
            snprintf(header, sizeof header, "{\"id\":%ld,\"status\":\"ok\",\"arrays\":[{\"name\":\"output\","
                     "\"dtype\":\"%s\",\"shape\":[%s]}]}", id, out.dtype, shape);
            int f64 = !strcmp(out.dtype, "float64");
            void *buf = malloc(out.count * (f64 ? 8 : 4) + 1);
            for (size_t j = 0; j < out.count; j++)
                if (f64) ((double *)buf)[j] = out.data[j]; else ((float *)buf)[j] = (float)out.data[j];
            send_frame(header, buf, out.count * (f64 ? 8 : 4));
            free(buf);
            free(out.data);
        }
        for (int i = 0; i < na; i++) free(a[i].data);
        free(h);
    }
}
