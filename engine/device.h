// engine/device.h: where a tensor's memory lives. The CPU backend is always built; CUDA is an
// addition, selected per tensor, so one binary can run and compare both.
#pragma once

#include <cstdint>
#include <string>

namespace retort {

enum class DeviceType : std::uint8_t { cpu, cuda };

struct Device {
    DeviceType type = DeviceType::cpu;
    int index = 0;

    static Device cpu() { return {DeviceType::cpu, 0}; }
    static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
    bool is_cpu() const { return type == DeviceType::cpu; }
    bool is_cuda() const { return type == DeviceType::cuda; }
    std::string str() const {
        return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
    }
    friend bool operator==(const Device&, const Device&) = default;
};

// "cpu", "cuda" (= cuda:0) or "cuda:N"; anything else is an Error that lists them.
Device parse_device(const std::string& name);
// An Error, saying why, unless `device` can be used here: the CPU always; a GPU only when this
// build has the CUDA backend and the GPU is visible.
void require_available(Device device);

}  // namespace retort
