/* A Modbus TCP server on libmodbus (Debian's libmodbus-dev), for the driver's interoperability
 * tests (tests/interop/test_modbus_libmodbus.py): another vendor's protocol stack, and value
 * encodings written here in C rather than by our Python codec.
 *
 * usage: server PORT SLOTS_FILE REGISTERS
 *   REGISTERS: the size of each table; a request beyond it gets libmodbus's own exception 2
 *   (illegal data address).
 *   SLOTS_FILE: one slot a line, "name table offset type order value", e.g.
 *     temp_cdab input_register 40 float32 CDAB -12.5
 *     label holding_register 200 string ABCD WALL-1 (the text runs to the end of the line)
 *     flag holding_register 210 bool bit3 1         (a bit field in a register)
 *   table: coil, discrete_input, input_register, holding_register; type: bool, int16, uint16,
 *   int32, uint32, int64, uint64, float32, float64, string (8 registers); order: ABCD, BADC, CDAB, DCBA, or
 *   SETABCD (a float32 put there by libmodbus's own modbus_set_float_abcd).
 *
 * Every slot a client writes is decoded again here and printed, "wrote NAME VALUE", after the
 * reply: float32 by libmodbus's getters (modbus_get_float_abcd...), the rest by this file.
 * Several clients at a time (select); stdout is line-buffered for the test to follow.
 */
#include <errno.h>
#include <modbus/modbus.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_SLOTS 256
#define STRING_WORDS 8 /* every text slot: 16 bytes, NUL-padded */

struct slot {
    char name[64], table[32], type[16], order[16], text[256];
    int offset, words;
};

static struct slot slots[MAX_SLOTS];
static int nslots;

static int words_of(const struct slot *s)
{
    if (!strcmp(s->type, "int32") || !strcmp(s->type, "uint32") || !strcmp(s->type, "float32"))
        return 2;
    if (!strcmp(s->type, "int64") || !strcmp(s->type, "uint64") || !strcmp(s->type, "float64"))
        return 4;
    if (!strcmp(s->type, "string"))
        return STRING_WORDS;
    return 1;
}

/* big-endian bytes (A first) <-> registers in the slot's order; every order its own inverse */
static void reorder(uint8_t *bytes, int n, const char *order)
{
    uint8_t tmp[256];
    int i;
    memcpy(tmp, bytes, n);
    for (i = 0; i < n; i++) {
        if (!strcmp(order, "DCBA"))
            bytes[i] = tmp[n - 1 - i];
        else if (!strcmp(order, "BADC"))
            bytes[i] = tmp[i ^ 1];
        else if (!strcmp(order, "CDAB")) /* words reversed, bytes inside each kept */
            bytes[i] = tmp[(n - 2 - (i & ~1)) + (i & 1)];
    }
}

static void to_registers(const uint8_t *bytes, int n, uint16_t *regs)
{
    int i;
    for (i = 0; i < n / 2; i++)
        regs[i] = (uint16_t)(bytes[2 * i] << 8 | bytes[2 * i + 1]);
}

static void from_registers(const uint16_t *regs, int words, uint8_t *bytes)
{
    int i;
    for (i = 0; i < words; i++) {
        bytes[2 * i] = regs[i] >> 8;
        bytes[2 * i + 1] = regs[i] & 0xff;
    }
}

static void put_number(const struct slot *s, uint16_t *regs)
{
    uint8_t bytes[8];
    uint16_t be[4];
    int n = 2 * s->words;
    uint64_t u = 0;
    if (!strcmp(s->type, "float32")) {
        float f = strtof(s->text, NULL);
        if (!strcmp(s->order, "SETABCD")) {
            modbus_set_float_abcd(f, regs);
            return;
        }
        memcpy(&u, &f, 4);
    } else if (!strcmp(s->type, "float64")) {
        double d = strtod(s->text, NULL);
        memcpy(&u, &d, 8);
    } else if (s->type[0] == 'u') {
        u = strtoull(s->text, NULL, 10);
    } else {
        u = (uint64_t)strtoll(s->text, NULL, 10);
    }
    /* libmodbus's own macros give the big-endian (ABCD) registers of 32- and 64-bit values */
    if (n == 8)
        MODBUS_SET_INT64_TO_INT16(be, 0, u);
    else if (n == 4)
        MODBUS_SET_INT32_TO_INT16(be, 0, (uint32_t)u);
    else
        be[0] = (uint16_t)u;
    from_registers(be, s->words, bytes);
    reorder(bytes, n, s->order);
    to_registers(bytes, n, regs);
}

static void put_slot(modbus_mapping_t *map, const struct slot *s)
{
    uint16_t *regs = !strcmp(s->table, "input_register") ? map->tab_input_registers
                                                          : map->tab_registers;
    if (!strcmp(s->table, "coil") || !strcmp(s->table, "discrete_input")) {
        uint8_t *bits = s->table[0] == 'c' ? map->tab_bits : map->tab_input_bits;
        bits[s->offset] = atoi(s->text) ? 1 : 0;
    } else if (!strcmp(s->type, "bool")) {
        int bit = atoi(s->order + 3);
        regs[s->offset] = (uint16_t)((regs[s->offset] & ~(1u << bit)) | ((atoi(s->text) ? 1u : 0u) << bit));
    } else if (!strcmp(s->type, "string")) {
        uint8_t bytes[256] = {0};
        memcpy(bytes, s->text, strlen(s->text));
        reorder(bytes, 2 * s->words, s->order);
        to_registers(bytes, 2 * s->words, regs + s->offset);
    } else {
        put_number(s, regs + s->offset);
    }
}

static float libmodbus_float(const uint16_t *regs, const char *order)
{
    if (!strcmp(order, "BADC"))
        return modbus_get_float_badc(regs);
    if (!strcmp(order, "CDAB"))
        return modbus_get_float_cdab(regs);
    if (!strcmp(order, "DCBA"))
        return modbus_get_float_dcba(regs);
    return modbus_get_float_abcd(regs);
}

static void print_slot(modbus_mapping_t *map, const struct slot *s)
{
    const uint16_t *regs = map->tab_registers + s->offset;
    uint8_t bytes[256] = {0};
    uint16_t be[4];
    int n = 2 * s->words;
    if (!strcmp(s->table, "coil")) {
        printf("wrote %s %s\n", s->name, map->tab_bits[s->offset] ? "true" : "false");
        return;
    }
    if (!strcmp(s->type, "bool")) {
        printf("wrote %s %s\n", s->name, (regs[0] >> atoi(s->order + 3)) & 1 ? "true" : "false");
        return;
    }
    if (!strcmp(s->type, "float32")) {
        printf("wrote %s %.9g\n", s->name, libmodbus_float(regs, s->order));
        return;
    }
    from_registers(regs, s->words, bytes);
    reorder(bytes, n, s->order);
    if (!strcmp(s->type, "string")) {
        printf("wrote %s %s\n", s->name, (char *)bytes);
        return;
    }
    to_registers(bytes, n, be);
    if (n == 8) {
        uint64_t u = MODBUS_GET_INT64_FROM_INT16(be, 0);
        double d;
        memcpy(&d, &u, 8);
        if (!strcmp(s->type, "float64"))
            printf("wrote %s %.17g\n", s->name, d);
        else if (s->type[0] == 'u')
            printf("wrote %s %llu\n", s->name, (unsigned long long)u);
        else
            printf("wrote %s %lld\n", s->name, (long long)(int64_t)u);
    } else if (n == 4) {
        uint32_t u = (uint32_t)MODBUS_GET_INT32_FROM_INT16(be, 0);
        printf("wrote %s %lld\n", s->name, s->type[0] == 'u' ? (long long)u : (long long)(int32_t)u);
    } else {
        printf("wrote %s %d\n", s->name, s->type[0] == 'u' ? (int)be[0] : (int)(int16_t)be[0]);
    }
}

/* after a write request: every slot it touched, as this server now decodes it */
static void report_writes(modbus_t *ctx, modbus_mapping_t *map, const uint8_t *req)
{
    int at = modbus_get_header_length(ctx), i;
    int function = req[at], start = req[at + 1] << 8 | req[at + 2], count = 1;
    const char *table = function == 5 || function == 15 ? "coil" : "holding_register";
    if (function != 5 && function != 6 && function != 15 && function != 16)
        return;
    if (function == 15 || function == 16)
        count = req[at + 3] << 8 | req[at + 4];
    for (i = 0; i < nslots; i++) {
        const struct slot *s = &slots[i];
        if (!strcmp(s->table, table) && s->offset < start + count && start < s->offset + s->words)
            print_slot(map, s);
    }
}

static int load_slots(const char *path)
{
    char line[512];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (nslots < MAX_SLOTS && fgets(line, sizeof line, f) != NULL) {
        struct slot *s = &slots[nslots];
        int used = 0;
        line[strcspn(line, "\n")] = 0;
        if (sscanf(line, "%63s %31s %d %15s %15s %n", s->name, s->table, &s->offset, s->type,
                   s->order, &used) < 5 || used == 0)
            continue;
        snprintf(s->text, sizeof s->text, "%s", line + used);
        s->words = words_of(s);
        nslots++;
    }
    fclose(f);
    return nslots;
}

int main(int argc, char **argv)
{
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    modbus_mapping_t *map;
    modbus_t *ctx;
    fd_set open_fds;
    int listener, top, fd, i, size;
    if (argc != 4 || load_slots(argv[2]) < 0) {
        fprintf(stderr, "usage: %s PORT SLOTS_FILE REGISTERS\n", argv[0]);
        return 2;
    }
    size = atoi(argv[3]);
    ctx = modbus_new_tcp("127.0.0.1", atoi(argv[1]));
    map = modbus_mapping_new(size, size, size, size);
    for (i = 0; i < nslots; i++)
        put_slot(map, &slots[i]);
    listener = modbus_tcp_listen(ctx, 8);
    if (listener < 0) {
        fprintf(stderr, "cannot listen: %s\n", modbus_strerror(errno));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("listening libmodbus %s, %d slots\n", LIBMODBUS_VERSION_STRING, nslots);
    FD_ZERO(&open_fds);
    FD_SET(listener, &open_fds);
    top = listener;
    for (;;) {
        fd_set ready = open_fds;
        if (select(top + 1, &ready, NULL, NULL, NULL) < 0)
            return 1;
        for (fd = 0; fd <= top; fd++) {
            if (!FD_ISSET(fd, &ready))
                continue;
            if (fd == listener) {
                int client = accept(listener, NULL, NULL);
                if (client >= 0) {
                    FD_SET(client, &open_fds);
                    top = client > top ? client : top;
                }
                continue;
            }
            modbus_set_socket(ctx, fd);
            int length = modbus_receive(ctx, query);
            if (length > 0) {
                modbus_reply(ctx, query, length, map); /* exceptions are libmodbus's own */
                report_writes(ctx, map, query);
            } else if (length < 0) {
                close(fd);
                FD_CLR(fd, &open_fds);
            }
        }
    }
}
