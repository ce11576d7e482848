// NCCL stand-in (-> libnccl.so.2): the communicator and the collectives mmard calls, across the
// processes of one machine, each with its own emulated GPU. Ranks meet in a folder named by the
// unique id (under /dev/shm): each collective is numbered, a rank's contribution is a file
// written whole and renamed into place, and the root adds the contributions in rank order. Calls
// are synchronous, like every stream operation of the emulator. A rank that waits more than
// MMARD_EMU_NCCL_TIMEOUT seconds (default 3600: rank 0 may evaluate alone between two steps) for
// the others stops the program, naming the call.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "blas_dnn.h"

namespace {

enum : int { ncclSuccess = 0, ncclSystemError = 2, ncclInvalidArgument = 4, ncclInvalidUsage = 5 };
enum : int { ncclFloat32 = 7, ncclFloat64 = 8 };
enum : int { ncclSum = 0 };
constexpr int ID_BYTES = 128;
constexpr const char* ID_PREFIX = "mmard-emu-nccl-";

struct Comm {
    std::string dir;
    int rank, nranks;
    long seq = 0;
    // The root's broadcast files, removed at its next reduce (every rank read them to get there).
    std::vector<std::string> broadcasts;
};

size_t dtype_size(int t) {
    static const size_t sizes[] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
    return t >= 0 && t < 10 ? sizes[t] : 0;
}

std::string base_dir() { return access("/dev/shm", W_OK) == 0 ? "/dev/shm/" : "/tmp/"; }

[[noreturn]] void stop(const char* call, const std::string& what) {
    std::fprintf(stderr, "mmard-emu: %s: %s\n", call, what.c_str());
    std::abort();
}

bool write_whole(const std::string& path, const void* data, size_t bytes) {
    std::string tmp = path + ".part";
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) return false;
    bool ok = std::fwrite(data, 1, bytes, f) == bytes;
    ok = std::fclose(f) == 0 && ok;
    return ok && std::rename(tmp.c_str(), path.c_str()) == 0;
}

// Waits for `path` (written by another rank) and reads `bytes` of it into `out`.
void read_when_there(const char* call, const std::string& path, void* out, size_t bytes) {
    const char* t = std::getenv("MMARD_EMU_NCCL_TIMEOUT");
    char* end = nullptr;
    long s = t ? std::strtol(t, &end, 10) : 0;
    if (t && (end == t || *end || s <= 0)) stop(call, "MMARD_EMU_NCCL_TIMEOUT must be a number of seconds");
    auto limit = std::chrono::seconds(t ? s : 3600);
    auto start = std::chrono::steady_clock::now();
    FILE* f;
    while (!(f = std::fopen(path.c_str(), "rb"))) {
        if (std::chrono::steady_clock::now() - start > limit) stop(call, "no other rank wrote " + path);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    size_t got = std::fread(out, 1, bytes, f);
    std::fclose(f);
    if (got != bytes) stop(call, path + " is shorter than the collective's buffer: ranks called it with other sizes");
}

std::string file(const Comm* c, const char* what, int rank) {
    return c->dir + "/" + std::to_string(c->seq) + "." + what + "." + std::to_string(rank);
}

template <class T>
void add(void* acc, const void* more, size_t n) {
    T* a = static_cast<T*>(acc);
    const T* b = static_cast<const T*>(more);
    for (size_t i = 0; i < n; ++i) a[i] += b[i];
}

// Sum of every rank's `send` in rank order, into the root's `recv`.
int reduce(const char* call, const void* send, void* recv, size_t count, int dtype, int op, int root, Comm* c) {
    size_t bytes = count * dtype_size(dtype);
    if (!c || op != ncclSum || (dtype != ncclFloat32 && dtype != ncclFloat64) || root < 0 || root >= c->nranks)
        return ncclInvalidArgument;
    need_range(call, "sendbuff", send, bytes);
    ++c->seq;
    if (c->rank != root) return write_whole(file(c, "r", c->rank), send, bytes) ? ncclSuccess : ncclSystemError;
    need_range(call, "recvbuff", recv, bytes);
    std::vector<char> sum(bytes), part(bytes);
    for (int r = 0; r < c->nranks; ++r) {
        if (r == c->rank) {
            std::memcpy(part.data(), send, bytes);
        } else {
            read_when_there(call, file(c, "r", r), part.data(), bytes);
            std::remove(file(c, "r", r).c_str());
        }
        if (r == 0) std::memcpy(sum.data(), part.data(), bytes);
        else if (dtype == ncclFloat32) add<float>(sum.data(), part.data(), count);
        else add<double>(sum.data(), part.data(), count);
    }
    std::memcpy(recv, sum.data(), bytes);
    for (const std::string& b : c->broadcasts) std::remove(b.c_str());
    c->broadcasts.clear();
    return ncclSuccess;
}

int broadcast(const char* call, const void* send, void* recv, size_t count, int dtype, int root, Comm* c) {
    size_t bytes = count * dtype_size(dtype);
    if (!c || bytes == 0 || root < 0 || root >= c->nranks) return ncclInvalidArgument;
    need_range(call, "recvbuff", recv, bytes);
    ++c->seq;
    if (c->rank == root) {
        need_range(call, "sendbuff", send, bytes);
        if (send != recv) std::memmove(recv, send, bytes);
        c->broadcasts.push_back(file(c, "b", root));
        return write_whole(c->broadcasts.back(), recv, bytes) ? ncclSuccess : ncclSystemError;
    }
    read_when_there(call, file(c, "b", root), recv, bytes);
    return ncclSuccess;
}

}  // namespace

EMU_API int ncclGetUniqueId(char* id) {
    if (!id) return ncclInvalidArgument;
    unsigned long long token = 0;
    FILE* f = std::fopen("/dev/urandom", "rb");
    if (!f || std::fread(&token, sizeof token, 1, f) != 1) return ncclSystemError;
    std::fclose(f);
    std::memset(id, 0, ID_BYTES);
    std::snprintf(id, ID_BYTES, "%s%d-%llx", ID_PREFIX, static_cast<int>(getpid()), token);
    return mkdir((base_dir() + id).c_str(), 0700) == 0 ? ncclSuccess : ncclSystemError;
}

// ncclUniqueId is 128 bytes passed by value: on x86-64 that is memory the caller copied, which
// this signature reads in place.
struct UniqueId {
    char internal[ID_BYTES];
};

EMU_API int ncclCommInitRank(Comm** comm, int nranks, UniqueId id, int rank) {
    if (!comm || nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
    std::string name(id.internal, strnlen(id.internal, ID_BYTES));
    if (name.rfind(ID_PREFIX, 0) != 0) return ncclInvalidUsage;
    std::string dir = base_dir() + name;
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) return ncclInvalidUsage;  // not an id of this machine
    *comm = new Comm{dir, rank, nranks, 0, {}};
    return ncclSuccess;
}

// The end of a communicator (cudarc drops one with ncclCommAbort): every rank says it is done and
// the last one there removes the folder.
EMU_API int ncclCommAbort(Comm* c) {
    if (!c) return ncclInvalidArgument;
    std::string done = c->dir + "/done." + std::to_string(c->rank);
    write_whole(done, "", 0);
    int seen = 0;
    for (int r = 0; r < c->nranks; ++r) seen += access((c->dir + "/done." + std::to_string(r)).c_str(), F_OK) == 0;
    if (seen == c->nranks) {
        if (DIR* d = opendir(c->dir.c_str())) {
            while (dirent* e = readdir(d))
                if (e->d_name[0] != '.') std::remove((c->dir + "/" + e->d_name).c_str());
            closedir(d);
        }
        rmdir(c->dir.c_str());
    }
    delete c;
    return ncclSuccess;
}

EMU_API int ncclCommDestroy(Comm* c) { return ncclCommAbort(c); }

EMU_API int ncclReduce(const void* send, void* recv, size_t count, int dtype, int op, int root, Comm* c, void*) {
    return reduce(__func__, send, recv, count, dtype, op, root, c);
}

EMU_API int ncclBroadcast(const void* send, void* recv, size_t count, int dtype, int root, Comm* c, void*) {
    return broadcast(__func__, send, recv, count, dtype, root, c);
}

EMU_API int ncclAllReduce(const void* send, void* recv, size_t count, int dtype, int op, Comm* c, void*) {
    if (int e = reduce(__func__, send, recv, count, dtype, op, 0, c)) return e;
    return broadcast(__func__, recv, recv, count, dtype, 0, c);
}

EMU_API int ncclCommCount(const Comm* c, int* n) { return c && n ? (*n = c->nranks, ncclSuccess) : ncclInvalidArgument; }
EMU_API int ncclCommUserRank(const Comm* c, int* r) { return c && r ? (*r = c->rank, ncclSuccess) : ncclInvalidArgument; }
EMU_API int ncclGroupStart() { return ncclSuccess; }
EMU_API int ncclGroupEnd() { return ncclSuccess; }
EMU_API int ncclGetVersion(int* v) { return v ? (*v = 23000, ncclSuccess) : ncclInvalidArgument; }
EMU_API const char* ncclGetErrorString(int e) {
    switch (e) {
        case ncclSuccess: return "no error";
        case ncclSystemError: return "a file of the emulated NCCL could not be written";
        case ncclInvalidArgument: return "invalid argument (the emulated NCCL sums float32 and float64 only)";
        case ncclInvalidUsage: return "invalid usage (not a unique id of the emulated NCCL on this machine)";
        default: return "unknown error";
    }
}
EMU_API const char* ncclGetLastError(const Comm*) { return ""; }
