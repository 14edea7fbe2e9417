"""FANet in ROS 2: the segmentation node behind ``fanet-ros2`` (Python 3.6 compatible;
rclpy, sensor_msgs, std_srvs and diagnostic_msgs come from a ROS 2 install or the
``ros2`` extra)."""
