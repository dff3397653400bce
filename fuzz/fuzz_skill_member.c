/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for src/lib/archive/skill_archive.c. The whole input is
 * inspected as an archive; the bytes before the first NUL (all of them if
 * there is none) are also classified as a member name and checked against a
 * separate statement of the rules, so a ".." component or an absolute name
 * can never be accepted. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "lib/archive/skill_archive.h"

/* Spec §7, written independently of the implementation: relative, no ".."
 * component (either slash separates), no control characters. */
static bool name_is_unsafe(const char *name)
{
    size_t len = strlen(name), start = 0;

    if (len == 0 || name[0] == '/' || name[0] == '\\')
        return true;
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char) name[i];
        if (i < len && (c < 0x20 || c == 0x7f))
            return true;
        if (i == len || c == '/' || c == '\\') {
            if (i - start == 2 && name[start] == '.' && name[start + 1] == '.')
                return true;
            start = i + 1;
        }
    }
    return false;
}

static bool special_is_excludable(const char *name)
{
    for (; *name; name++) {
        unsigned char c = (unsigned char) *name;
        if (c < 0x20 || c > 0x7e || strchr("\\^#", c))
            return false;
    }
    return true;
}

static void check_name(const char *name)
{
    enum al_member_verdict reg = al_skill_member_check(name, true, false);
    enum al_member_verdict dir = al_skill_member_check(name, false, true);
    enum al_member_verdict special = al_skill_member_check(name, false, false);

    if (name_is_unsafe(name)) {
        CHECK(reg == AL_MEMBER_REFUSED && dir == AL_MEMBER_REFUSED && special == AL_MEMBER_REFUSED);
        return;
    }
    CHECK(reg == AL_MEMBER_OK && dir == AL_MEMBER_OK);
    CHECK(special == (special_is_excludable(name) ? AL_MEMBER_EXCLUDED : AL_MEMBER_REFUSED));
}

static bool text_ok(const char *s)
{
    if (!s)
        return true;
    if (!*s)
        return false;
    for (; *s; s++)
        if (((unsigned char) *s < 0x20 && *s != '\n' && *s != '\t') || *s == 0x7f)
            return false;
    return true;
}

static void check_archive(const uint8_t *data, size_t size)
{
    struct al_skill_info info;
    int r = al_skill_archive_inspect(data, size, &info);

    CHECK(memchr(info.error, '\0', sizeof(info.error)));
    if (r < 0) {
        CHECK(r == -EBADMSG || r == -EPERM || r == -E2BIG || r == -ENOENT || r == -ENOMEM);
        CHECK(info.error[0] != '\0');
        CHECK(!info.name && !info.description && !info.directory);
        return;
    }
    CHECK(r == 0);
    CHECK(info.members >= 1);
    CHECK(info.members + info.excluded <= AL_SKILL_MAX_MEMBERS);
    if (info.directory) {
        CHECK(!strchr(info.directory, '/'));
        CHECK(strcmp(info.directory, ".") != 0);
        CHECK(al_skill_member_check(info.directory, false, true) == AL_MEMBER_OK);
    }
    CHECK(text_ok(info.name) && text_ok(info.description));
    al_skill_info_done(&info);
    CHECK(!info.name && !info.description && !info.directory);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    char *name = strndup((const char *) data, nul ? (size_t) (nul - data) : size);

    if (!name)
        abort();
    check_name(name);
    free(name);
    check_archive(data, size);
    return 0;
}
