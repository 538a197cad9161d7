/* test_nn.c: host tests of the nn kernels and the whole model against vectors generated from the
 * integer reference (tests/vectors/, written by `hil gen vectors`). Built with ASan and UBSan, once
 * per model variant (-DVARIANT="w8a16", or -DMODEL_FLOAT for the float model). Prints one line per
 * suite and, for a failure, the position, the value and the expected value. Exit status: failures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "nn.h"

static int failures;

static FILE *open_vec(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "%s: cannot open\n", path);
        exit(2);
    }
    int c;
    while ((c = fgetc(f)) == '#') { /* skip header comments */
        while ((c = fgetc(f)) != '\n' && c != EOF) {
        }
    }
    ungetc(c, f);
    return f;
}

static int read_ll(FILE *f, long long *v) { return fscanf(f, "%lld", v) == 1; }

static long long need(FILE *f, const char *what) {
    long long v;
    if (!read_ll(f, &v)) {
        fprintf(stderr, "truncated vector file while reading %s\n", what);
        exit(2);
    }
    return v;
}

static void report(const char *suite, long n, long bad) {
    printf("%-22s %6ld vectors %s\n", suite, n, bad ? "FAIL" : "ok");
    failures += bad != 0;
}

#ifndef MODEL_FLOAT
static void test_requant(const char *dir) {
    FILE *f = open_vec(dir, "requant.txt");
    long n = 0, bad = 0;
    long long acc;
    while (read_ll(f, &acc)) {
        int shift = (int)need(f, "shift"), bits = (int)need(f, "bits");
        long long want = need(f, "expected");
        int32_t got = nn_requant(acc, shift, bits);
        if (got != want && bad++ < 3) {
            printf("requant at %ld: nn_requant(%lld, %d, %d) got %ld, want %lld\n", n, acc, shift, bits, (long)got, want);
        }
        n++;
    }
    fclose(f);
    report("nn_requant", n, bad);
}

static void test_act(const char *dir, const char *file, int16_t (*fn)(int16_t, int), const char *name) {
    FILE *f = open_vec(dir, file);
    long n = 0, bad = 0;
    long long frac;
    while (read_ll(f, &frac)) {
        int16_t x = (int16_t)need(f, "x");
        long long want = need(f, "expected");
        int16_t got = fn(x, (int)frac);
        if (got != want && bad++ < 3) {
            printf("%s at %ld: x=%d frac_in=%lld: got %d, want %lld\n", name, n, x, frac, got, want);
        }
        n++;
    }
    fclose(f);
    report(name, n, bad);
}

/* The exporter's 32-bit proof (harness.quant.export.acc32_proof) for a test layer, with the input
 * bound |x| <= 32768 of the vectors. */
static int blocked_applies(const nn_fc_q_t *fc) {
    if (fc->shift < 1) {
        return 0;
    }
    for (int o = 0; o < fc->out; o++) {
        long long bound = llabs((long long)fc->bias[o] + (1LL << (fc->shift - 1)));
        for (int i = 0; i < fc->in; i++) {
            const long long w = fc->w8 ? fc->w8[o * fc->in + i] : fc->w16[o * fc->in + i];
            bound += llabs(w) * 32768LL;
        }
        if (bound >= (1LL << 31)) {
            return 0;
        }
    }
    return 1;
}

/* Lay a row-major layer out as nn_fully_connected_blk_s32 wants it on this core (as the exporter
 * does: the SMLAD layout wb with NN_BLK_DSP, else the chained layout wc) and run it. */
static int16_t blk_weight(const nn_fc_q_t *fc, const void *w, int wbits, int o, int i) {
    if (o >= fc->out || i >= fc->in) {
        return 0;
    }
    return wbits == 8 ? ((const int8_t *)w)[o * fc->in + i] : ((const int16_t *)w)[o * fc->in + i];
}

static void run_blocked(const nn_fc_q_t *fc, const void *w, int wbits, const int16_t *x, int16_t *y, int ob) {
    static int16_t xpad[72] __attribute__((aligned(4)));
    static int32_t br[72];
    const int out_pad = (fc->out + 3) / 4 * 4, in_pad = fc->in + (fc->in & 1);
    for (int o = 0; o < out_pad; o++) {
        br[o] = o < fc->out ? (int32_t)(fc->bias[o] + (1LL << (fc->shift - 1))) : 0;
    }
    for (int i = 0; i < in_pad; i++) {
        xpad[i] = i < fc->in ? x[i] : 0;
    }
    nn_fc_q_t b = *fc;
    b.w8 = 0;
    b.w16 = 0;
    b.in_pad = (uint16_t)in_pad;
    b.acc32 = 1;
#if NN_BLK_DSP
    static int16_t wb[72 * 72] __attribute__((aligned(4)));
    for (int o = 0; o < out_pad; o++) {
        for (int i = 0; i < in_pad; i++) {
            /* block o/4, pair i/2, row o%4, element i%2 */
            wb[((o / 4) * (in_pad / 2) + i / 2) * 8 + (o % 4) * 2 + i % 2] = blk_weight(fc, w, wbits, o, i);
        }
    }
    b.wb = wb;
    b.bias_r = br;
#else
    static uint32_t wc[72 * 72];
    static int32_t bc[72];
    for (int blk = 0; blk < out_pad / 4; blk++) {
        for (int i = 0; i < fc->in; i++) {
            for (int k = 0; k < 3; k++) { /* (w_r + 2^15) + 2^16 w_{r+1}, mod 2^32 */
                const int r = blk * 4 + k;
                wc[(blk * fc->in + i) * 3 + k] = (uint32_t)(blk_weight(fc, w, wbits, r, i) + 32768) +
                                                 ((uint32_t)blk_weight(fc, w, wbits, r + 1, i) << 16);
            }
        }
        for (int k = 0; k < 4; k++) {
            const uint32_t next = k < 3 ? (uint32_t)br[blk * 4 + k + 1] << 16 : 0u;
            bc[blk * 4 + k] = (int32_t)((uint32_t)br[blk * 4 + k] + next);
        }
    }
    b.wb = 0;
    b.wc = wc;
    b.bias_r = bc;
#endif
    nn_fully_connected_blk_s32(&b, xpad, y, ob);
}

static void test_fc(const char *dir, const char *file, int wbits) {
    FILE *f = open_vec(dir, file);
    long n = 0, bad = 0, blk_n = 0, blk_bad = 0;
    long long out;
    static int8_t w8[70 * 70];
    static int16_t w16[70 * 70], x[70], y[70], want[70];
    static int32_t b[70];
    while (read_ll(f, &out)) {
        nn_fc_q_t fc = {0};
        fc.out = (uint16_t)out;
        fc.in = (uint16_t)need(f, "in");
        fc.shift = (int8_t)need(f, "shift");
        int ob = (int)need(f, "out_bits");
        for (int i = 0; i < fc.out * fc.in; i++) {
            long long v = need(f, "w");
            w8[i] = (int8_t)v;
            w16[i] = (int16_t)v;
        }
        for (int i = 0; i < fc.out; i++) b[i] = (int32_t)need(f, "b");
        for (int i = 0; i < fc.in; i++) x[i] = (int16_t)need(f, "x");
        for (int i = 0; i < fc.out; i++) want[i] = (int16_t)need(f, "y");
        fc.bias = b;
        if (wbits == 8) {
            fc.w8 = w8;
            nn_fully_connected_s8w(&fc, x, y, ob);
        } else {
            fc.w16 = w16;
            nn_fully_connected_s16w(&fc, x, y, ob);
        }
        for (int i = 0; i < fc.out; i++) {
            if (y[i] != want[i] && bad++ < 3) {
                printf("%s record %ld at %d: got %d, want %d\n", file, n, i, y[i], want[i]);
            }
        }
        n++;
        if (blocked_applies(&fc)) {
            run_blocked(&fc, wbits == 8 ? (const void *)w8 : (const void *)w16, wbits, x, y, ob);
            for (int i = 0; i < fc.out; i++) {
                if (y[i] != want[i] && blk_bad++ < 3) {
                    printf("%s record %ld at %d (blocked, 32-bit): got %d, want %d\n", file, n - 1, i, y[i], want[i]);
                }
            }
            blk_n++;
        }
    }
    fclose(f);
    report(wbits == 8 ? "nn_fully_connected_s8w" : "nn_fully_connected_s16w", n, bad);
    report(wbits == 8 ? "blk_s32 (from s8w)" : "blk_s32 (from s16w)", blk_n, blk_bad);
}

static void test_gru_step(const char *dir) {
    FILE *f = open_vec(dir, "gru_step_" VARIANT ".txt");
    const int H = model_q.hidden;
    long n = 0, bad = 0;
    int16_t a[NN_MAX_HIDDEN], h[NN_MAX_HIDDEN], scratch[6 * NN_MAX_HIDDEN];
    long long v;
    while (read_ll(f, &v)) {
        a[0] = (int16_t)v;
        for (int i = 1; i < H; i++) a[i] = (int16_t)need(f, "a");
        for (int i = 0; i < H; i++) h[i] = (int16_t)need(f, "h");
        nn_gru_step_s16(&model_q, a, h, scratch);
        for (int i = 0; i < H; i++) {
            long long want = need(f, "h_next");
            if (h[i] != want && bad++ < 3) {
                printf("gru_step record %ld at %d: got %d, want %lld\n", n, i, h[i], want);
            }
        }
        n++;
    }
    fclose(f);
    report("nn_gru_step_s16", n, bad);
}

static void test_model(const char *dir) {
    FILE *f = open_vec(dir, "model_" VARIANT ".txt");
    long n = 0, bad = 0;
    int16_t x[256 * NN_CHANNELS];
    long long id;
    while (read_ll(f, &id)) {
        for (int i = 0; i < model_q.window * NN_CHANNELS; i++) x[i] = (int16_t)need(f, "x");
        int32_t logits[NN_CLASSES];
        uint8_t cls = nn_model_infer_q(&model_q, x, logits);
        for (int k = 0; k < NN_CLASSES; k++) {
            long long want = need(f, "logit");
            if (logits[k] != want && bad++ < 3) {
                printf("model " VARIANT " window %lld score %d: got %ld, want %lld\n", id, k, (long)logits[k], want);
            }
        }
        long long want_cls = need(f, "class");
        if (cls != want_cls && bad++ < 3) {
            printf("model " VARIANT " window %lld: class %d, want %lld\n", id, cls, want_cls);
        }
        n++;
    }
    fclose(f);
    report("model " VARIANT " (bit-exact)", n, bad);
}
#else
static void test_float_model(const char *dir) {
    FILE *f = open_vec(dir, "float_model.txt");
    long n = 0, bad = 0;
    int16_t x[256 * NN_CHANNELS];
    long long id;
    double max_err = 0;
    while (read_ll(f, &id)) {
        for (int i = 0; i < model_f.window * NN_CHANNELS; i++) x[i] = (int16_t)need(f, "x");
        float logits[NN_CLASSES];
        uint8_t cls = nn_model_infer_f32(&model_f, x, logits);
        for (int k = 0; k < NN_CLASSES; k++) {
            double want;
            if (fscanf(f, "%lf", &want) != 1) exit(2);
            double err = fabs(logits[k] - want);
            max_err = err > max_err ? err : max_err;
            if (err > 1e-3 && bad++ < 3) {
                printf("float model window %lld score %d: got %.7g, want %.7g\n", id, k, logits[k], want);
            }
        }
        long long want_cls = need(f, "class");
        if (cls != want_cls && bad++ < 3) {
            printf("float model window %lld: class %d, want %lld\n", id, cls, want_cls);
        }
        n++;
    }
    fclose(f);
    printf("float model max |logit - torch| = %.3g (tolerance 1e-3)\n", max_err);
    report("model float32 (1e-3)", n, bad);
}
#endif

#if defined(__arm__)
/* On the target (QEMU with semihosting): files and stdout go to the host through newlib's rdimon. */
extern void initialise_monitor_handles(void);
#endif

int main(int argc, char **argv) {
#if defined(__arm__)
    initialise_monitor_handles();
    const char *dir = "tests/vectors"; /* relative to QEMU's working directory; no argv here */
    (void)argc;
    (void)argv;
#else
    const char *dir = argc > 1 ? argv[1] : "tests/vectors";
#endif
#ifndef MODEL_FLOAT
    test_requant(dir);
    test_act(dir, "sigmoid.txt", nn_sigmoid_s16, "nn_sigmoid_s16");
    test_act(dir, "tanh.txt", nn_tanh_s16, "nn_tanh_s16");
    test_fc(dir, "fc_s8w.txt", 8);
    test_fc(dir, "fc_s16w.txt", 16);
    test_gru_step(dir);
    test_model(dir);
#else
    test_float_model(dir);
#endif
    printf("%d failed suite(s)\n", failures);
    fflush(stdout);
    exit(failures); /* on the target: a semihosting exit, which ends QEMU with this status */
}
