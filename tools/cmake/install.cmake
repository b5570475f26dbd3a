# tools/cmake/install.cmake: what `cmake --install` puts under the prefix.
#
#   include/retort/        the headers of engine/, layers/, models/, data/, distill/ (the source
#                          layout, so "engine/tensor.h" works as in the sources) and retort.h
#   lib/libretort.a|.so    the library (BUILD_SHARED_LIBS picks)
#   bin/retort             the command-line tool, when it is built
#   lib/cmake/retort/      retortConfig.cmake, retortConfigVersion.cmake, retortTargets*.cmake:
#                          find_package(retort CONFIG) gives retort::retort
#   lib/pkgconfig/retort.pc
#
# Every path in the package files is relative to the prefix, so an installed tree can be moved.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS retort EXPORT retortTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET retort_cli)
  install(TARGETS retort_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
foreach(area engine layers models data distill)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${area} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/retort
          FILES_MATCHING PATTERN "*.h")
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/tools/include/retort/retort.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/retort)

set(RETORT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/retort)
install(EXPORT retortTargets NAMESPACE retort:: DESTINATION ${RETORT_CMAKE_DIR})
get_target_property(retort_library_type retort TYPE)
configure_package_config_file(${PROJECT_SOURCE_DIR}/tools/cmake/retortConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/retortConfig.cmake
                              INSTALL_DESTINATION ${RETORT_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/retortConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/retortConfig.cmake ${PROJECT_BINARY_DIR}/retortConfigVersion.cmake
        DESTINATION ${RETORT_CMAKE_DIR})

# pkg-config: the same flags as the CMake target, spelled out.
set(RETORT_PC_CFLAGS "-std=c++20 -pthread")
set(RETORT_PC_LIBS "-lretort")
set(RETORT_PC_LIBS_PRIVATE "")
set(RETORT_PC_REQUIRES_PRIVATE "")
if(RETORT_WITH_OPENMP)
  string(APPEND RETORT_PC_CFLAGS " -DRETORT_HAVE_OPENMP=1 ${OpenMP_CXX_FLAGS}")
  string(APPEND RETORT_PC_LIBS " ${OpenMP_CXX_FLAGS}")
endif()
if(RETORT_HAVE_CUDA)
  string(APPEND RETORT_PC_CFLAGS " -DRETORT_HAVE_CUDA=1 -I${CUDAToolkit_INCLUDE_DIRS}")
  string(APPEND RETORT_PC_LIBS " -L${CUDAToolkit_LIBRARY_DIR} -lcudart -lcublas -lcufft")
  if(RETORT_HAVE_CUDNN)
    string(APPEND RETORT_PC_LIBS " ${RETORT_CUDNN_LIBRARY}")
  endif()
endif()
if(RETORT_NATIVE)
  string(APPEND RETORT_PC_CFLAGS " -march=native")
endif()
if(RETORT_SANITIZE)
  string(APPEND RETORT_PC_LIBS " -fsanitize=${retort_sanitizers}")
endif()
if(RETORT_WITH_ZLIB)
  set(RETORT_PC_REQUIRES_PRIVATE "zlib")
endif()
if(NOT BUILD_SHARED_LIBS)
  # A static library brings its private dependencies along: pkg-config --static is not needed
  # for them to link.
  string(APPEND RETORT_PC_LIBS " -pthread")
  if(RETORT_WITH_ZLIB)
    string(APPEND RETORT_PC_LIBS " -lz")
  endif()
  if(RETORT_HAVE_MPI)
    list(JOIN MPI_CXX_LIBRARIES " " retort_mpi_libs)
    string(APPEND RETORT_PC_LIBS " ${retort_mpi_libs}")
  endif()
  if(RETORT_HAVE_NCCL)
    string(APPEND RETORT_PC_LIBS " ${RETORT_NCCL_LIBRARY}")
  endif()
endif()
# the prefix seen from the .pc file's folder (lib/pkgconfig, or deeper with a multiarch libdir)
file(RELATIVE_PATH RETORT_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${PROJECT_SOURCE_DIR}/tools/cmake/retort.pc.in ${PROJECT_BINARY_DIR}/retort.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/retort.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
