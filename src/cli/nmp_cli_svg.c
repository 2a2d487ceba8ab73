/* nmp_cli_svg.c: plots as standalone SVG (bars in model order, scatter on linear or log axes),
 * written by hand so the program needs no plotting library */
#include "nmp_cli_batch.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define W 960.0
#define H 540.0
#define LEFT 80.0
#define RIGHT 170.0 /* legend */
#define TOP 50.0

/* Tableau 10: distinct on screen and in grey print. */
static const char *const palette[] = { "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                       "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac" };

typedef struct out {
    char *text;
    size_t len, cap;
    bool bad;
} out;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || o->bad) {
        o->bad = true;
        return;
    }
    if (o->len + (size_t)n + 1 > o->cap) {
        const size_t cap = 2 * o->cap + (size_t)n + 8192;
        char *grown = nmp_realloc(o->text, cap);
        if (!grown) {
            o->bad = true;
            return;
        }
        o->text = grown;
        o->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(o->text + o->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
}

/* Text with &, <, > and " escaped, at most max characters (then an ellipsis). */
static void put_text(out *o, const char *s, size_t max)
{
    const size_t len = strlen(s);
    if (len > max)
        s += len - max + 1, put(o, "&#8230;");
    for (; *s; s++) {
        switch (*s) {
        case '&': put(o, "&amp;"); break;
        case '<': put(o, "&lt;"); break;
        case '>': put(o, "&gt;"); break;
        case '"': put(o, "&quot;"); break;
        default: put(o, "%c", (unsigned char)*s < 0x20 ? ' ' : *s);
        }
    }
}

/* An axis: data range [lo, hi] (log10 of it when log) onto pixels [p0, p1]. */
typedef struct axis {
    double lo, hi, p0, p1;
    bool log;
} axis;

static double map(const axis *a, double v)
{
    const double x = a->log ? log10(v) : v;
    return a->p0 + (x - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

/* Range of the values (log10 when log), widened a little and never empty. */
static void fit(axis *a, const double *v, size_t n, size_t stride, bool with_zero)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t k = 0; k < n; k++) {
        const double x = v[k * stride];
        if (!isfinite(x) || (a->log && x <= 0))
            continue;
        const double t = a->log ? log10(x) : x;
        lo = fmin(lo, t);
        hi = fmax(hi, t);
    }
    if (with_zero && !a->log) {
        lo = fmin(lo, 0);
        hi = fmax(hi, 0);
    }
    if (!isfinite(lo)) {
        lo = 0;
        hi = 1;
    }
    if (hi - lo < 1e-9) {
        lo -= a->log ? 0.5 : fmax(fabs(lo) * 0.1, 0.5);
        hi += a->log ? 0.5 : fmax(fabs(hi) * 0.1, 0.5);
    }
    const double pad = (hi - lo) * 0.05;
    a->lo = a->log ? floor(lo - pad) : (with_zero && lo == 0 ? 0 : lo - pad);
    a->hi = a->log ? ceil(hi + pad) : hi + pad;
}

/* Tick label: short and exact enough. */
static void tick_label(char *s, size_t len, double v, bool log)
{
    if (log) {
        const double e = round(log10(v));
        if (fabs(log10(v) - e) < 1e-9 && (e < -2 || e > 4))
            snprintf(s, len, "1e%d", (int)e);
        else
            snprintf(s, len, "%g", v);
    } else {
        snprintf(s, len, "%g", fabs(v) < 1e-12 ? 0.0 : v);
    }
}

/* Grid lines and labels along one axis (vertical: the y axis). */
static void ticks(out *o, const axis *a, bool vertical, double x0, double x1, double y0,
                  double y1)
{
    double vals[64];
    int n = 0;
    if (a->log) {
        const int span = (int)(a->hi - a->lo);
        for (int e = (int)a->lo; e <= (int)a->hi && n < 60; e++) {
            vals[n++] = pow(10, e);
            if (span <= 2 && e < (int)a->hi) {
                vals[n++] = 2 * pow(10, e);
                vals[n++] = 5 * pow(10, e);
            }
        }
    } else {
        const double raw = (a->hi - a->lo) / 6;
        const double mag = pow(10, floor(log10(raw)));
        const double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag
                            : raw / mag < 7.5 ? 5 * mag : 10 * mag;
        for (double v = ceil(a->lo / step) * step; v <= a->hi + 1e-9 * step && n < 60; v += step)
            vals[n++] = v;
    }
    for (int k = 0; k < n; k++) {
        char label[32];
        const double p = map(a, vals[k]);
        tick_label(label, sizeof label, vals[k], a->log);
        if (vertical) {
            put(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                x0, p, x1, p);
            put(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"12\">%s</text>\n",
                x0 - 6, p + 4, label);
        } else {
            put(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", p,
                y0, p, y1);
            put(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">%s"
                "</text>\n", p, y1 + 18, label);
        }
    }
}

char *svg_render(const svg_plot *p)
{
    out o = { 0 };
    const double bottom = p->bars ? 190 : 70;
    const double x0 = LEFT, x1 = W - RIGHT, y0 = TOP, y1 = H - bottom;
    axis ax = { 0, 1, x0, x1, p->xlog };
    axis ay = { 0, 1, y1, y0, p->ylog };
    if (p->bars) {
        ax.lo = -0.5;
        ax.hi = (double)(p->count ? p->count : 1) - 0.5;
    } else {
        fit(&ax, &p->points[0].x, p->count, sizeof *p->points / sizeof(double), false);
    }
    fit(&ay, &p->points[0].y, p->count, sizeof *p->points / sizeof(double), p->bars);
    put(&o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    put(&o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
        "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n", W, H, W,
        H);
    put(&o, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    put(&o, "<text x=\"%.1f\" y=\"28\" text-anchor=\"middle\" font-size=\"17\" "
        "font-weight=\"bold\">", (x0 + x1) / 2);
    put_text(&o, p->title, 120);
    put(&o, "</text>\n");
    /* bands per group (bars) */
    if (p->bars && p->ngroups > 0) {
        size_t k = 0;
        for (int g = 0; g < p->ngroups; g++) {
            const size_t first = k;
            while (k < p->count && p->points[k].group == g)
                k++;
            if (k == first)
                continue;
            const double a = map(&ax, (double)first - 0.5), b = map(&ax, (double)k - 0.5);
            if (g % 2)
                put(&o, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" "
                    "fill=\"#f3f3f3\"/>\n", a, y0, b - a, y1 - y0);
            if (p->ngroups <= 40) {
                const double c = (a + b) / 2;
                put(&o, "<text transform=\"translate(%.2f,%.1f) rotate(-60)\" text-anchor=\"end\" "
                    "font-size=\"10\">", c + 3, y1 + 10);
                put_text(&o, p->groups[g], 28);
                put(&o, "</text>\n");
            }
        }
    }
    ticks(&o, &ay, true, x0, x1, y0, y1);
    if (!p->bars)
        ticks(&o, &ax, false, x0, x1, y0, y1);
    put(&o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
        "stroke=\"#333\"/>\n", x0, y0, x1 - x0, y1 - y0);
    /* data */
    if (p->bars) {
        const double w = (x1 - x0) / (ax.hi - ax.lo);
        const double zero = map(&ay, 0);
        for (size_t k = 0; k < p->count; k++) {
            const svg_point *q = &p->points[k];
            if (!isfinite(q->y))
                continue;
            const double c = map(&ax, q->x), v = map(&ay, q->y);
            put(&o, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>\n",
                c - 0.4 * w, fmin(v, zero), fmax(0.8 * w, 0.5), fabs(zero - v),
                palette[q->series % 10]);
        }
        put(&o, "<line x1=\"%.1f\" y1=\"%.2f\" x2=\"%.1f\" y2=\"%.2f\" stroke=\"#333\"/>\n", x0,
            zero, x1, zero);
    } else {
        for (size_t k = 0; k < p->count; k++) {
            const svg_point *q = &p->points[k];
            if (!isfinite(q->x) || !isfinite(q->y) || (p->xlog && q->x <= 0) ||
                (p->ylog && q->y <= 0))
                continue;
            put(&o, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3.5\" fill=\"%s\" fill-opacity=\"0.75\" "
                "stroke=\"none\"/>\n", map(&ax, q->x), map(&ay, q->y), palette[q->series % 10]);
        }
    }
    if (p->count == 0)
        put(&o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" "
            "fill=\"#777\">no finished jobs</text>\n", (x0 + x1) / 2, (y0 + y1) / 2);
    /* labels and legend */
    put(&o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">", (x0 + x1) / 2,
        H - 12);
    put_text(&o, p->xlabel, 100);
    put(&o, "</text>\n<text transform=\"translate(20,%.1f) rotate(-90)\" text-anchor=\"middle\" "
        "font-size=\"13\">", (y0 + y1) / 2);
    put_text(&o, p->ylabel, 80);
    put(&o, "</text>\n");
    for (int s = 0; s < p->nseries; s++) {
        const double y = y0 + 10 + 22 * s;
        put(&o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"14\" fill=\"%s\"/>\n", x1 + 16,
            y, palette[s % 10]);
        put(&o, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\">", x1 + 36, y + 12);
        put_text(&o, p->series[s], 16);
        put(&o, "</text>\n");
    }
    put(&o, "</svg>\n");
    if (o.bad) {
        nmp_free(o.text);
        return NULL;
    }
    return o.text;
}
