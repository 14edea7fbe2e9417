"""Launch the FANet segmentation node from ROS 2 (Humble, Jazzy), its parameters from
fanet.yaml beside this file, the model and camera topic from the command line:

    ros2 launch examples/ros2/fanet.launch.py model:=fanet18_512x1024_fp16.engine \\
        input_topic:=/camera/image_raw

``fanet-ros2`` must be on the PATH of the shell that sourced ROS 2 (pip install fanet
into the Python ROS 2 uses). The tests run the node with fanet.yaml; this file is not
run there (the launch package is not on PyPI).
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration

PARAMETERS = Path(__file__).with_name("fanet.yaml")


def generate_launch_description() -> LaunchDescription:
    model = LaunchConfiguration("model")
    topic = LaunchConfiguration("input_topic")
    node = [
        "fanet-ros2",
        "--ros-args",
        "--params-file",
        str(PARAMETERS),
        "-p",
        ["model:=", model],
        "-p",
        ["input_topic:=", topic],
    ]
    return LaunchDescription(
        [
            DeclareLaunchArgument("model", description="an engine, ONNX or checkpoint"),
            DeclareLaunchArgument("input_topic", default_value="/camera/image_raw"),
            ExecuteProcess(cmd=node, output="screen", sigterm_timeout="10"),
        ]
    )
