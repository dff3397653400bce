/* SPDX-License-Identifier: Apache-2.0 */
#include <stdint.h>
#include <string.h>

#include "map.h"

struct entry {
    struct entry *next;
    uint64_t hash;
    void *value;
    char key[];
};

struct al_map {
    struct entry **buckets;
    size_t nbuckets;   /* a power of two */
    size_t size;
};

/* FNV-1a: keys are our own ids and tokens' digests, not adversarial input
 * that could be chosen to collide. */
static uint64_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char) *s) * 1099511628211ULL;
    return h;
}

struct al_map *al_map_new(void)
{
    struct al_map *m = al_xcalloc(1, sizeof(*m));
    m->nbuckets = 16;
    m->buckets = al_xcalloc(m->nbuckets, sizeof(struct entry *));
    return m;
}

struct al_map *al_map_free(struct al_map *m)
{
    if (!m)
        return NULL;
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct entry *e = m->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(m->buckets);
    free(m);
    return NULL;
}

static struct entry **find(const struct al_map *m, const char *key, uint64_t h)
{
    struct entry **pp = &m->buckets[h & (m->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && !strcmp((*pp)->key, key))
            break;
    return pp;
}

static void grow(struct al_map *m)
{
    size_t n = m->nbuckets * 2;
    struct entry **b = al_xcalloc(n, sizeof(struct entry *));
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct entry *e = m->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

void *al_map_get(const struct al_map *m, const char *key)
{
    struct entry *e = *find(m, key, hash_of(key));
    return e ? e->value : NULL;
}

void *al_map_put(struct al_map *m, const char *key, void *value)
{
    uint64_t h = hash_of(key);
    struct entry **pp = find(m, key, h);
    if (*pp) {
        void *old = (*pp)->value;
        (*pp)->value = value;
        return old;
    }
    size_t kl = strlen(key);
    struct entry *e = al_xmalloc(sizeof(*e) + kl + 1);
    e->next = NULL;
    e->hash = h;
    e->value = value;
    memcpy(e->key, key, kl + 1);
    *pp = e;
    if (++m->size > m->nbuckets)
        grow(m);
    return NULL;
}

void *al_map_remove(struct al_map *m, const char *key)
{
    struct entry **pp = find(m, key, hash_of(key)), *e = *pp;
    if (!e)
        return NULL;
    void *v = e->value;
    *pp = e->next;
    free(e);
    m->size--;
    return v;
}

size_t al_map_size(const struct al_map *m)
{
    return m->size;
}

void al_map_sweep(struct al_map *m, bool (*fn)(const char *key, void *value, void *ud), void *ud)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct entry **pp = &m->buckets[i];
        while (*pp) {
            struct entry *e = *pp;
            if (fn(e->key, e->value, ud)) {
                *pp = e->next;
                free(e);
                m->size--;
            } else
                pp = &e->next;
        }
    }
}
