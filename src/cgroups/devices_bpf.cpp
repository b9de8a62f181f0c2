// Cgroup v2 device control: a BPF_PROG_TYPE_CGROUP_DEVICE program assembled here and loaded with raw bpf().
//
// The kernel runs the program on every device access of a task in the cgroup with a struct bpf_cgroup_dev_ctx
// { u32 access_type (access << 16 | type); u32 major; u32 minor; } in r1; r0 = 1 allows, 0 denies.
// OCI device rules apply in order, the last matching rule deciding, with everything denied by default. The
// program checks the rules from last to first and returns at the first match. An allow rule matches when it
// grants every access bit asked for; a deny rule matches when it names any of them.
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "cgroups/cgroups.hpp"
#include "common/fs.hpp"

namespace berth::cgroups {

namespace {

bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}

bpf_insn ldx_w(uint8_t dst, uint8_t src, int16_t off) {
    return insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0);
}
bpf_insn alu_k(uint8_t op, uint8_t dst, int32_t imm) {
    return insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm);
}
bpf_insn mov_x(uint8_t dst, uint8_t src) {
    return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}
bpf_insn jmp_k(uint8_t op, uint8_t dst, int32_t imm, int16_t off) {
    return insn(BPF_JMP | op | BPF_K, dst, 0, off, imm);
}
bpf_insn exit_insn() {
    return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

uint32_t access_bits(std::string_view access) {
    if (access.empty()) access = "rwm";
    uint32_t bits = 0;
    for (char c : access) {
        if (c == 'r') bits |= BPF_DEVCG_ACC_READ;
        if (c == 'w') bits |= BPF_DEVCG_ACC_WRITE;
        if (c == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
    }
    return bits;
}

}  // namespace

std::vector<bpf_insn> build_device_program(const std::vector<spec::DeviceCgroupRule>& rules);

std::vector<bpf_insn> build_device_program(const std::vector<spec::DeviceCgroupRule>& rules) {
    std::vector<bpf_insn> prog = {
        ldx_w(2, 1, 0), alu_k(BPF_AND, 2, 0xffff),  // r2 = device type
        ldx_w(3, 1, 0), alu_k(BPF_RSH, 3, 16),      // r3 = access asked for
        ldx_w(4, 1, 4),                             // r4 = major
        ldx_w(5, 1, 8),                             // r5 = minor
    };
    bool decided = false;  // a rule matching every access ends the program: nothing after it is reachable
    for (auto it = rules.rbegin(); it != rules.rend() && !decided; ++it) {
        const auto& r = *it;
        std::vector<bpf_insn> block;
        std::vector<size_t> to_next;  // jumps to the next block, patched once the block's length is known
        auto jump_unless = [&](uint8_t op, uint8_t reg, int32_t imm) {
            to_next.push_back(block.size());
            block.push_back(jmp_k(op, reg, imm, 0));
        };
        if (r.type == "c") jump_unless(BPF_JNE, 2, BPF_DEVCG_DEV_CHAR);
        if (r.type == "b") jump_unless(BPF_JNE, 2, BPF_DEVCG_DEV_BLOCK);
        if (r.major && *r.major >= 0) jump_unless(BPF_JNE, 4, static_cast<int32_t>(*r.major));
        if (r.minor && *r.minor >= 0) jump_unless(BPF_JNE, 5, static_cast<int32_t>(*r.minor));
        uint32_t acc = access_bits(r.access);
        if (acc != (BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD)) {
            block.push_back(mov_x(6, 3));
            if (r.allow) {
                block.push_back(alu_k(BPF_AND, 6, static_cast<int32_t>(~acc & 7)));
                jump_unless(BPF_JNE, 6, 0);  // asks for a bit the rule does not grant
            } else {
                block.push_back(alu_k(BPF_AND, 6, static_cast<int32_t>(acc)));
                jump_unless(BPF_JEQ, 6, 0);  // asks for none of the bits the rule denies
            }
        }
        block.push_back(alu_k(BPF_MOV, 0, r.allow ? 1 : 0));
        block.push_back(exit_insn());
        for (size_t j : to_next) block[j].off = static_cast<int16_t>(block.size() - j - 1);
        decided = to_next.empty();
        prog.insert(prog.end(), block.begin(), block.end());
    }
    if (!decided) {
        prog.push_back(alu_k(BPF_MOV, 0, 0));
        prog.push_back(exit_insn());
    }
    return prog;
}

Result<void> attach_device_filter(const std::string& dir, const std::vector<spec::DeviceCgroupRule>& rules) {
    auto all = effective_device_rules(rules);
    if (all.empty()) return {};
    std::vector<bpf_insn> prog = build_device_program(all);
    char log_buf[4096] = {};
    static const char license[] = "Apache-2.0";
    union bpf_attr load;
    std::memset(&load, 0, sizeof load);
    load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    load.insns = reinterpret_cast<uint64_t>(prog.data());
    load.insn_cnt = static_cast<uint32_t>(prog.size());
    load.license = reinterpret_cast<uint64_t>(license);
    int prog_fd = static_cast<int>(::syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load));
    if (prog_fd < 0) {
        int err = errno;
        // Load again with the verifier's log (a log that does not fit would itself fail the first load).
        load.log_buf = reinterpret_cast<uint64_t>(log_buf);
        load.log_size = sizeof log_buf - 1;
        load.log_level = 1;
        int again = static_cast<int>(::syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load));
        if (again >= 0) ::close(again);
        return fail_errno(err, "load the device filter (BPF_PROG_TYPE_CGROUP_DEVICE, {} instructions){}{}", prog.size(),
                          log_buf[0] ? ": verifier: " : "", log_buf);
    }
    UniqueFd prog_owned(prog_fd);
    BERTH_ASSIGN(UniqueFd cg, open_fd(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    union bpf_attr attach;
    std::memset(&attach, 0, sizeof attach);
    attach.target_fd = static_cast<uint32_t>(cg.get());
    attach.attach_bpf_fd = static_cast<uint32_t>(prog_fd);
    attach.attach_type = BPF_CGROUP_DEVICE;
    attach.attach_flags = BPF_F_ALLOW_MULTI;
    if (::syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach) < 0)
        return fail_sys("attach the device filter to {}", dir);
    return {};
}

}  // namespace berth::cgroups
