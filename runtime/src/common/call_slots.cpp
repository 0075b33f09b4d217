#include "common/call_slots.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace mephisto::call_slots {
namespace {

constexpr char kMagic[8] = {'M', 'P', 'H', 'C', 'A', 'L', 'L', '1'};
constexpr uint32_t kSlotCount = 128;

struct Slot {
    std::atomic<uint32_t> seq;  // odd while the thread writes it
    uint32_t active;
    int32_t fault;
    int32_t partition;
    int64_t offset;
    int64_t started_ns;
    char pipeline[64], agent[64], plugin[64], sha1[48], callback[48], topic[256];
};

struct Page {
    char magic[8];
    uint32_t slot_count;
    uint32_t slot_size;
    Slot slots[kSlotCount];
};

Page* g_page = nullptr;
std::atomic<uint64_t> g_names_epoch{0};  // bumped by names_freed
const char* const kNotCopied = reinterpret_cast<const char*>(uintptr_t{1});  // matches no name
std::mutex g_free_mutex;  // claiming and releasing slots: once per thread
std::vector<int> g_free;
int g_next = 0;

// The thread's slot, released for another thread when this one ends.
struct ThreadSlot {
    int index = -2;  // -2: not claimed yet; -1: none left
    uint64_t names_epoch = 0;
    // What the slot's names were copied from: copied again only when a pointer changes.
    const char* pipeline = nullptr;
    const char* agent = nullptr;
    const char* plugin = nullptr;
    const char* sha1 = nullptr;
    const char* callback = nullptr;
    const char* topic = nullptr;
    ~ThreadSlot() {
        if (index < 0 || !g_page) return;
        g_page->slots[index].active = 0;
        std::lock_guard lock(g_free_mutex);
        g_free.push_back(index);
    }
};
thread_local ThreadSlot t_slot;

Slot* my_slot() noexcept {
    if (!g_page) return nullptr;
    if (t_slot.index == -2) {
        std::lock_guard lock(g_free_mutex);
        if (!g_free.empty()) {
            t_slot.index = g_free.back();
            g_free.pop_back();
        } else {
            t_slot.index = g_next < static_cast<int>(kSlotCount) ? g_next++ : -1;
        }
    }
    return t_slot.index >= 0 ? &g_page->slots[t_slot.index] : nullptr;
}

template <size_t N>
void copy_name(char (&to)[N], const char*& cached, const char* from) noexcept {
    if (from == cached) return;
    cached = from;
    size_t n = 0;
    if (from)
        for (; n < N - 1 && from[n]; ++n) to[n] = from[n];
    to[n] = '\0';
}

template <size_t N>
std::string text(const char (&s)[N]) {
    return std::string(s, strnlen(s, N));
}

}  // namespace

int64_t now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Status share(const std::filesystem::path& file) {
    const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return make_error("cannot create " + file.string() + ": " + strerror(errno));
    if (::ftruncate(fd, sizeof(Page)) != 0) {
        const std::string why = strerror(errno);
        ::close(fd);
        return make_error("cannot size " + file.string() + ": " + why);
    }
    void* memory = ::mmap(nullptr, sizeof(Page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (memory == MAP_FAILED) return make_error("cannot map " + file.string() + ": " + strerror(errno));
    auto* page = static_cast<Page*>(memory);  // zero-filled by ftruncate
    page->slot_count = kSlotCount;
    page->slot_size = sizeof(Slot);
    std::memcpy(page->magic, kMagic, sizeof kMagic);
    g_page = page;
    return {};
}

void publish(const PluginCallRecord& r) noexcept {
    Slot* s = my_slot();
    if (!s) return;
    if (const uint64_t epoch = g_names_epoch.load(std::memory_order_relaxed); epoch != t_slot.names_epoch) {
        t_slot.names_epoch = epoch;
        t_slot.pipeline = t_slot.agent = t_slot.plugin = t_slot.sha1 = t_slot.callback = t_slot.topic = kNotCopied;
    }
    s->seq.fetch_add(1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (r.plugin) {
        copy_name(s->pipeline, t_slot.pipeline, r.pipeline);
        copy_name(s->agent, t_slot.agent, r.agent);
        copy_name(s->plugin, t_slot.plugin, r.plugin);
        copy_name(s->sha1, t_slot.sha1, r.sha1);
        copy_name(s->callback, t_slot.callback, r.callback);
        copy_name(s->topic, t_slot.topic, r.topic);
        s->partition = r.partition;
        s->offset = r.offset;
        s->started_ns = now_ns();
        s->active = 1;
    } else {
        s->active = 0;
    }
    s->seq.fetch_add(1, std::memory_order_release);
}

void names_freed() noexcept { g_names_epoch.fetch_add(1, std::memory_order_relaxed); }

void mark_fault(int32_t fault) noexcept {
    if (!g_page || t_slot.index < 0) return;
    g_page->slots[t_slot.index].fault = fault;
}

std::vector<CallInProgress> read(const std::filesystem::path& file, bool live) {
    std::vector<CallInProgress> out;
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return out;
    struct stat st {};
    void* memory = MAP_FAILED;
    if (::fstat(fd, &st) == 0 && static_cast<size_t>(st.st_size) == sizeof(Page))
        memory = ::mmap(nullptr, sizeof(Page), PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    if (memory == MAP_FAILED) return out;
    const auto* page = static_cast<const Page*>(memory);
    if (std::memcmp(page->magic, kMagic, sizeof kMagic) == 0 && page->slot_count == kSlotCount &&
        page->slot_size == sizeof(Slot)) {
        for (const Slot& s : page->slots) {
            // A sequence lock: even and unchanged around the copy, else the thread was writing the slot.
            const uint32_t before = s.seq.load(std::memory_order_acquire);
            if (live && (before & 1)) continue;
            if (!s.active) continue;
            CallInProgress c;
            c.pipeline = text(s.pipeline);
            c.agent = text(s.agent);
            c.plugin = text(s.plugin);
            c.sha1 = text(s.sha1);
            c.callback = text(s.callback);
            c.topic = text(s.topic);
            c.partition = s.partition;
            c.offset = s.offset;
            c.started_ns = s.started_ns;
            c.fault = s.fault;
            std::atomic_thread_fence(std::memory_order_acquire);
            if (live && s.seq.load(std::memory_order_relaxed) != before) continue;
            out.push_back(std::move(c));
        }
    }
    ::munmap(memory, sizeof(Page));
    return out;
}

std::optional<CallInProgress> culprit(const std::vector<CallInProgress>& calls, int64_t hung_before_ns) {
    for (const auto& c : calls)
        if (c.fault != 0) return c;
    if (hung_before_ns == 0) return std::nullopt;
    const CallInProgress* oldest = nullptr;
    for (const auto& c : calls)
        if (c.started_ns < hung_before_ns && (!oldest || c.started_ns < oldest->started_ns)) oldest = &c;
    return oldest ? std::optional(*oldest) : std::nullopt;
}

}  // namespace mephisto::call_slots
